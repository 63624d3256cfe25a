import { createHash } from 'node:crypto';
import { lintSource } from '@secretlint/core';
import { secretLintProfiler } from '@secretlint/profiler';
import { creator as recommended } from '@secretlint/secretlint-rule-preset-recommend';
import { genericFindings } from './generic';
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
  const lower = text.toLowerCase();
  for (const f of catalogueFindings(text, lower)) found.push({ start: f.start, end: f.end, kind: kindOfRule(f.ruleId) });
  genericFindings(text, lower, found);
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
