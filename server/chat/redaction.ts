import { createHash } from 'node:crypto';
import { lintSource } from '@secretlint/core';
import { secretLintProfiler } from '@secretlint/profiler';
import { creator as recommended } from '@secretlint/secretlint-rule-preset-recommend';

/*
 * Chat redaction (DESIGN "Security defaults", spec gateway §1.7): secrets in a chat message are
 * replaced by an explicit marker before anything is stored or sent to a model. The detector is
 * secretlint's maintained recommended preset; the supplementary rules below cover only what that
 * preset misses (each is pinned by tests/unit/redaction.test.ts). Nothing here ever logs a match.
 */

export const REDACTION_MARKER = 'SECRET_REDACTED';

export type SecretKind = 'api_key' | 'token' | 'password' | 'private_key';

export interface Redaction {
  text: string;
  /** The kinds found, sorted, each once. */
  kinds: SecretKind[];
  /** How many secrets were replaced. */
  count: number;
}

interface Found {
  start: number;
  end: number;
  kind: SecretKind;
}

/*
 * secretlint's built-in profiler keeps every performance mark of every lint for the life of the
 * process and scans that list on each new mark: in a server that lints every chat message it grows
 * without bound and made redaction the largest CPU cost of a completion. We never read its figures.
 */
secretLintProfiler.mark = () => {};

const SECRETLINT_CONFIG = { rules: [{ id: '@secretlint/secretlint-rule-preset-recommend', rule: recommended }] };

/** secretlint rule → our kind; provider keys are api_key, access tokens token, credentials password. */
function kindOfRule(ruleId: string): SecretKind {
  if (/privatekey/.test(ruleId)) return 'private_key';
  if (/basicauth|database-connection-string/.test(ruleId)) return 'password';
  if (/github|slack|npm|gitlab|linear|1password/.test(ruleId)) return 'token';
  return 'api_key';
}

/** At least two of lower/upper/digit, and a digit: keys are random, words and identifiers are not. */
function looksRandom(s: string): boolean {
  const classes = Number(/[a-z]/.test(s)) + Number(/[A-Z]/.test(s)) + Number(/\d/.test(s));
  return classes >= 2 && /\d/.test(s);
}

interface Rule {
  kind: SecretKind;
  /**
   * Text every match contains, lower case: a text without it is not scanned. A literal search is
   * far cheaper than a pattern that starts with a lookbehind, tried at every position.
   */
  hint?: string;
  pattern: RegExp;
  /** Which capture group is the secret (0: the whole match). */
  group?: number;
  accept?: (value: string, match: RegExpExecArray) => boolean;
}

/*
 * What secretlint's recommended preset (v11) does not catch or catches only in part: OpenAI
 * project keys without the T3BlbkFJ marker, GitHub fine-grained tokens of other lengths, GitLab,
 * Google API keys, JWTs, bearer headers, `password=`-style assignments, AWS access key ids that
 * look like the documentation's and AWS secrets next to an id, URL passwords of any scheme, PEM
 * blocks without an END line.
 */
const RULES: Rule[] = [
  { kind: 'api_key', hint: 'sk-', pattern: /(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-|ant-[a-z]+\d*-)?[A-Za-z0-9_-]{20,}/dg, accept: looksRandom },
  { kind: 'token', hint: 'gh', pattern: /(?<![A-Za-z0-9_])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,255}(?![A-Za-z0-9_])/g },
  { kind: 'token', hint: 'github_pat_', pattern: /(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,255}(?![A-Za-z0-9_])/g },
  { kind: 'token', hint: 'glpat-', pattern: /(?<![A-Za-z0-9_-])glpat-[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])/g },
  { kind: 'token', hint: 'xox', pattern: /(?<![A-Za-z0-9_-])xox[abpres]-[A-Za-z0-9-]{10,}(?![A-Za-z0-9_-])/dg, accept: (v) => /\d/.test(v) },
  { kind: 'api_key', hint: 'aiza', pattern: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g },
  { kind: 'api_key', pattern: /(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])/g },
  {
    kind: 'api_key',
    hint: 'secret',
    pattern: /(?:aws_?)?secret_?access_?key["']?\s*(?::|=>|=)\s*["']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/dgi,
    group: 1,
  },
  { kind: 'token', hint: 'eyj', pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}/g },
  { kind: 'token', hint: 'authorization', pattern: /\bauthorization["']?\s*[:=]\s*["']?(?:bearer|token|basic)\s+([A-Za-z0-9._~+/-]{8,}=*)/dgi, group: 1 },
  { kind: 'token', hint: 'bearer', pattern: /\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)/dgi, group: 1, accept: (v) => looksRandom(v) || /[._~+/-]/.test(v) && /\d/.test(v) },
  { kind: 'password', hint: '://', pattern: /\b[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'<>]+:([^\s/?#@"'<>]+)@[^\s/?#@"'<>]/dgi, group: 1, accept: (v) => !/^[$%{<*]/.test(v) },
  {
    kind: 'private_key',
    hint: '-----begin ',
    pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----\r?\n([\s\S]*?)(?=-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)/dg,
    group: 1,
    accept: (v) => v.trim() !== '',
  },
];

/** Words after `password:` in prose that are not the password. */
const NOT_A_VALUE = new Set(['is', 'was', 'the', 'a', 'an', 'please', 'required', 'field', 'and', 'or', 'must', 'should', 'reset', 'here', 'for', 'to', 'of', 'null', 'none', 'nil', 'true', 'false', 'undefined', 'empty', 'changed', 'expired',
  // type annotations: `password: str`, `token: string`
  'str', 'string', 'bytes', 'text', 'secretstr', 'optional', 'any', 'unknown']);

/** Labels whose value is a secret; a prefix such as `DB_` or `github-` may come before them. */
const LABEL = '(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|secret[_-]?key|api[_-]?key|apikey|access[_-]?key|token|access[_-]?token|auth[_-]?token|refresh[_-]?token|id[_-]?token|session[_-]?token)';

function kindOfLabel(label: string): SecretKind {
  if (/(?:api[_-]?key|apikey|access[_-]?key)$/i.test(label)) return 'api_key';
  if (/token$/i.test(label)) return 'token';
  return 'password';
}

/**
 * `password=hunter2`, `"api_key": "…"`, `GITHUB_TOKEN: abc…` (YAML, env files, JSON, prose): the
 * label stays, the value goes. Values that are code rather than a secret (a call, a member
 * access, a variable reference, a literal like null, a type) are left alone.
 */
const ASSIGNMENT = new RegExp(
  `(?<![A-Za-z0-9_-])["']?((?:[A-Za-z0-9]+[_-])*?${LABEL})["']?[ \\t]*(:|=(?!=)|=>)[ \\t]*(?:(["'\`])([^"'\`\\n]*)\\3|([^\\s"'\`,;)}\\]]+))`,
  'gi',
);

function assignments(text: string, out: Found[]): void {
  for (const m of text.matchAll(ASSIGNMENT)) {
    const kind = kindOfLabel(m[1]!);
    const quoted = m[4];
    const value = quoted ?? m[5]!;
    if (value.length < 3 || /^[*x•.]+$/i.test(value) || /^[$%{<[]/.test(value) || value.includes('${')) continue;
    if (quoted === undefined) {
      if (value.length < 4 || NOT_A_VALUE.has(value.toLowerCase())) continue;
      // Code: a call, an expression, a member access such as process.env.X.
      if (/[()]/.test(value) || /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/.test(value)) continue;
    }
    const start = m.index + m[0].length - value.length - (quoted !== undefined ? 1 : 0);
    out.push({ start, end: start + value.length, kind });
  }
}

/** The words every label of LABEL contains one of. */
const LABEL_HINTS = ['pass', 'pwd', 'secret', 'key', 'token'];

function supplementary(text: string, out: Found[]): void {
  const lower = text.toLowerCase();
  for (const rule of RULES) {
    if (rule.hint !== undefined && !lower.includes(rule.hint)) continue;
    for (const m of text.matchAll(rule.pattern)) {
      const g = rule.group ?? 0;
      const value = m[g];
      if (value === undefined || value === '') continue;
      if (rule.accept && !rule.accept(value, m as RegExpExecArray)) continue;
      const start = m.indices?.[g]?.[0] ?? m.index;
      out.push({ start, end: start + value.length, kind: rule.kind });
    }
  }
  // An AWS secret access key is 40 characters of base64 near its key id, labelled or not.
  for (const m of lower.includes('akia') || lower.includes('asia') ? text.matchAll(/(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/g) : []) {
    const from = m.index + m[0].length;
    const near = text.slice(from, from + 200);
    const s = /(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/.exec(near);
    if (s && looksRandom(s[0])) out.push({ start: from + s.index, end: from + s.index + 40, kind: 'api_key' });
  }
  if (LABEL_HINTS.some((h) => lower.includes(h))) assignments(text, out);
}

/**
 * A range secretlint reports may cover more than the secret: the whole connection string of a
 * URL with a password, a label (`AWS_SECRET_ACCESS_KEY=`), a PEM block's BEGIN line. Keep the
 * readable parts so the message still makes sense.
 */
function narrow(text: string, f: Found): Found {
  const s = text.slice(f.start, f.end);
  const url = /^[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]+:([^\s/?#@]+)@/i.exec(s);
  if (url) {
    const at = url[0].length - 1 - url[1]!.length;
    return { start: f.start + at, end: f.start + at + url[1]!.length, kind: f.kind };
  }
  const label = /^["']?[A-Za-z_][A-Za-z0-9_.-]*["']?\s*(?::|=>|=)\s*["']?/.exec(s);
  if (label && label[0].length < s.length) return { start: f.start + label[0].length, end: f.end, kind: f.kind };
  const pem = /^-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----\r?\n/.exec(s);
  if (pem) {
    const endLine = s.lastIndexOf('-----END');
    return { start: f.start + pem[0].length, end: endLine > pem[0].length ? f.start + endLine : f.end, kind: f.kind };
  }
  return f;
}

/** Replaces every secret in `text` by SECRET_REDACTED. */
export async function redact(text: string): Promise<Redaction> {
  if (text === '') return { text, kinds: [], count: 0 };
  const found: Found[] = [];
  const result = await lintSource({ source: { content: text, filePath: 'chat-message.txt', contentType: 'text' }, options: { config: SECRETLINT_CONFIG, noPhysicFilePath: true, maskSecrets: true } });
  for (const m of result.messages) {
    if (m.type !== 'message') continue;
    found.push(narrow(text, { start: m.range[0], end: m.range[1], kind: kindOfRule(m.ruleId) }));
  }
  supplementary(text, found);
  if (found.length === 0) return { text, kinds: [], count: 0 };

  // Overlapping findings are one secret; a label-narrowed range inside a wider one merges too.
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Found[] = [];
  for (const f of found) {
    if (f.end <= f.start) continue;
    const last = merged.at(-1);
    if (last && f.start < last.end) last.end = Math.max(last.end, f.end);
    else merged.push({ ...f });
  }
  let out = '';
  let at = 0;
  for (const f of merged) {
    out += text.slice(at, f.start) + REDACTION_MARKER;
    at = f.end;
  }
  out += text.slice(at);
  const kinds = [...new Set(found.map((f) => f.kind))].sort();
  return { text: out, kinds, count: merged.length };
}

/**
 * Redactions of recent texts, keyed by their SHA-256 (never by the text, which may hold a secret):
 * chat clients send the whole conversation with every request, so without this each completion
 * redacted every earlier message again, about 45 µs each on the event loop.
 */
const recent = new Map<string, Redaction>();
const RECENT_MAX = 4096;

async function redactRemembered(text: string): Promise<Redaction> {
  const key = createHash('sha256').update(text).digest('base64');
  const known = recent.get(key);
  if (known) {
    // Most recently used last, so that the oldest goes first.
    recent.delete(key);
    recent.set(key, known);
    return known;
  }
  const r = await redact(text);
  recent.set(key, r);
  if (recent.size > RECENT_MAX) recent.delete(recent.keys().next().value!);
  return r;
}

/** Redacts several texts; the result tells whether anything was replaced and which kinds. */
export async function redactAll(texts: readonly string[]): Promise<{ texts: string[]; kinds: SecretKind[]; count: number }> {
  const results = await Promise.all(texts.map((t) => redactRemembered(t)));
  return {
    texts: results.map((r) => r.text),
    kinds: [...new Set(results.flatMap((r) => r.kinds))].sort(),
    count: results.reduce((n, r) => n + r.count, 0),
  };
}
