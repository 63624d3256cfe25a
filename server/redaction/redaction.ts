import { createHash } from 'node:crypto';
import { lintSource } from '@secretlint/core';
import { secretLintProfiler } from '@secretlint/profiler';
import { creator as recommended } from '@secretlint/secretlint-rule-preset-recommend';
import { credentialName, genericFindings, holdsValue } from './generic';
import { catalogueFindings } from './gitleaks';

/*
 * Redaction: secrets in what a user sends (chat messages, prompts, run logs, free-form metadata)
 * are replaced by an explicit marker before anything is stored or sent to a model. Two maintained
 * catalogues find them, secretlint's recommended preset and gitleaks' rules (./gitleaks.ts); the
 * rules of ./generic.ts add secrets known by their shape alone (assignments, URL passwords,
 * bearer tokens). Nothing here ever logs a match.
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

export interface Found {
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

/** secretlint or gitleaks rule → our kind; provider keys are api_key, access tokens token, credentials password. */
function kindOfRule(ruleId: string): SecretKind {
  if (/private-?key|age-secret/.test(ruleId)) return 'private_key';
  if (/basicauth|connection-string|password/.test(ruleId)) return 'password';
  if (/token|jwt|github|slack|npm|gitlab|linear|1password|vault|webhook/.test(ruleId)) return 'token';
  return 'api_key';
}

/**
 * A range may cover more than the secret: a PEM block's BEGIN and END lines (gitleaks' private-key
 * rule has no secret group) and, from secretlint, the whole connection string of a URL with a
 * password or a label (`AWS_SECRET_ACCESS_KEY=`). Keep the readable parts so the text still makes
 * sense. gitleaks' secret groups hold no label: a token with a `=` in it stays whole.
 */
function narrow(text: string, f: Found, labels: boolean): Found {
  const s = text.slice(f.start, f.end);
  const pem = /^-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----\r?\n/.exec(s);
  if (pem) {
    const endLine = s.lastIndexOf('-----END');
    return { start: f.start + pem[0].length, end: endLine > pem[0].length ? f.start + endLine : f.end, kind: f.kind };
  }
  if (!labels) return f;
  const url = /^[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]+:([^\s/?#@]+)@/i.exec(s);
  if (url) {
    const at = url[0].length - 1 - url[1]!.length;
    return { start: f.start + at, end: f.start + at + url[1]!.length, kind: f.kind };
  }
  const label = /^["']?[A-Za-z_][A-Za-z0-9_.-]*["']?\s*(?::|=>|=)\s*["']?/.exec(s);
  if (label && label[0].length < s.length) return { start: f.start + label[0].length, end: f.end, kind: f.kind };
  return f;
}

/** Every secret in `text`, each range narrowed to the secret itself; unsorted, may overlap. */
async function findSecrets(text: string): Promise<Found[]> {
  const found: Found[] = [];
  const result = await lintSource({ source: { content: text, filePath: 'chat-message.txt', contentType: 'text' }, options: { config: SECRETLINT_CONFIG, noPhysicFilePath: true, maskSecrets: true } });
  for (const m of result.messages) {
    if (m.type !== 'message') continue;
    found.push(narrow(text, { start: m.range[0], end: m.range[1], kind: kindOfRule(m.ruleId) }, true));
  }
  const lower = text.toLowerCase();
  for (const f of catalogueFindings(text, lower)) {
    // gitleaks' generic rule says "key" for all it finds; its label tells a token or a password from a key.
    const kind = f.ruleId === 'generic-api-key' ? (credentialName(f.before.replace(/[^A-Za-z0-9_-]+$/, '')) ?? 'api_key') : kindOfRule(f.ruleId);
    found.push(narrow(text, { start: f.start, end: f.end, kind }, false));
  }
  genericFindings(text, lower, found);
  return found;
}

/** `text` with every found range replaced by the marker; overlapping findings are one secret. */
function replaceFound(text: string, found: Found[]): Redaction {
  if (found.length === 0) return { text, kinds: [], count: 0 };
  // A label-narrowed range inside a wider one merges too.
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

/** Replaces every secret in `text` by SECRET_REDACTED. */
export async function redact(text: string): Promise<Redaction> {
  if (text === '') return { text, kinds: [], count: 0 };
  return replaceFound(text, await findSecrets(text));
}

/**
 * Redactions of recent texts, keyed by their SHA-256 (never by the text, which may hold a secret):
 * chat clients send the whole conversation with every request, so without this each completion
 * redacted every earlier message again.
 */
const recent = new Map<string, Redaction>();
const RECENT_MAX = 4096;

export interface RedactOptions {
  /**
   * Remember the results for the next call (the default): for texts that come again, as chat
   * conversations do. Log lines do not, and would only push the conversations out.
   */
  remember?: boolean;
}

/**
 * Each text redacted. Those not remembered are searched as one text, joined by line breaks:
 * secretlint costs mostly per call (some 30 µs for a lone log line, 2 µs a line in a batch of a
 * hundred), and a secret split over several texts (a private key printed line by line) is seen whole.
 */
async function redactEach(texts: readonly string[], opts: RedactOptions): Promise<Redaction[]> {
  const remember = opts.remember !== false;
  const out: Redaction[] = new Array<Redaction>(texts.length);
  const keys = remember ? texts.map((t) => createHash('sha256').update(t).digest('base64')) : [];
  const todo: number[] = [];
  texts.forEach((t, i) => {
    const known = remember ? recent.get(keys[i]!) : undefined;
    if (t === '') out[i] = { text: t, kinds: [], count: 0 };
    else if (known) {
      // Most recently used last, so that the oldest goes first.
      recent.delete(keys[i]!);
      recent.set(keys[i]!, known);
      out[i] = known;
    } else todo.push(i);
  });
  if (todo.length === 1) out[todo[0]!] = await redact(texts[todo[0]!]!);
  else if (todo.length > 1) {
    const joined = todo.map((i) => texts[i]!).join('\n');
    const found = (await findSecrets(joined)).sort((a, b) => a.start - b.start);
    let from = 0;
    let f = 0;
    for (const i of todo) {
      const to = from + texts[i]!.length;
      while (f < found.length && found[f]!.end <= from) f++;
      const mine: Found[] = [];
      for (let k = f; k < found.length && found[k]!.start < to; k++) {
        if (found[k]!.end > from) mine.push({ start: Math.max(found[k]!.start, from) - from, end: Math.min(found[k]!.end, to) - from, kind: found[k]!.kind });
      }
      out[i] = replaceFound(texts[i]!, mine);
      from = to + 1;
    }
  }
  if (remember) {
    for (const i of todo) {
      recent.set(keys[i]!, out[i]!);
      if (recent.size > RECENT_MAX) recent.delete(recent.keys().next().value!);
    }
  }
  return out;
}

/** Redacts several texts; the result tells whether anything was replaced and which kinds. */
export async function redactAll(texts: readonly string[], opts: RedactOptions = {}): Promise<{ texts: string[]; kinds: SecretKind[]; count: number }> {
  const results = await redactEach(texts, opts);
  return {
    texts: results.map((r) => r.text),
    kinds: [...new Set(results.flatMap((r) => r.kinds))].sort(),
    count: results.reduce((n, r) => n + r.count, 0),
  };
}

/**
 * A JSON value (free-form metadata, a log entry's data) with its strings redacted like messages.
 * Keys are names, not content, but they label what they hold: a string under a key named like a
 * credential (`password`, `db_pass`, `apiKey`, `client_secret`, `token`...) is replaced whole.
 */
export async function redactJson<T>(value: T, opts: RedactOptions = {}): Promise<{ value: T; kinds: SecretKind[]; count: number }> {
  const leaves: Array<{ text: string; key: string | undefined }> = [];
  const collect = (v: unknown, key: string | undefined): void => {
    if (typeof v === 'string') leaves.push({ text: v, key });
    else if (Array.isArray(v)) v.forEach((x) => collect(x, key));
    else if (v !== null && typeof v === 'object') Object.entries(v).forEach(([k, x]) => collect(x, k));
  };
  collect(value, undefined);
  if (leaves.length === 0) return { value, kinds: [], count: 0 };
  const results = await redactEach(leaves.map((l) => l.text), opts);
  const kinds = new Set(results.flatMap((r) => r.kinds));
  let count = 0;
  const texts = results.map((r, i) => {
    const label = leaves[i]!.key === undefined ? null : credentialName(leaves[i]!.key!);
    if (label === null || r.text === REDACTION_MARKER || !holdsValue(leaves[i]!.text)) {
      count += r.count;
      return r.text;
    }
    // Replaced whole: one secret, whatever was found inside it.
    kinds.add(label);
    count += 1;
    return REDACTION_MARKER;
  });
  let next = 0;
  const rebuild = (v: unknown): unknown => {
    if (typeof v === 'string') return texts[next++]!;
    if (Array.isArray(v)) return v.map(rebuild);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rebuild(x)]));
    return v;
  };
  return { value: rebuild(value) as T, kinds: [...kinds].sort(), count };
}
