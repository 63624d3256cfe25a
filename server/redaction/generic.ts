import type { Found, SecretKind } from './redaction';

/*
 * Secrets known by their shape rather than their provider, which the maintained catalogues
 * (secretlint, gitleaks) find only in part: `sk-` keys of any provider (OpenAI-compatible APIs use
 * it too), an AWS secret next to its key id without a label, bearer tokens, `password=`-style
 * assignments with short or human-chosen values, passwords in URLs of any scheme, PEM blocks
 * without an END line. Each is pinned by tests/unit/redaction.test.ts.
 */

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
  accept?: (value: string) => boolean;
}

const RULES: Rule[] = [
  { kind: 'api_key', hint: 'sk-', pattern: /(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-|ant-[a-z]+\d*-)?[A-Za-z0-9_-]{20,}/dg, accept: looksRandom },
  { kind: 'api_key', pattern: /(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])/g },
  {
    kind: 'api_key',
    hint: 'secret',
    pattern: /(?:aws_?)?secret_?access_?key["']?\s*(?::|=>|=)\s*["']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/dgi,
    group: 1,
  },
  { kind: 'token', hint: 'eyj', pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}/g },
  { kind: 'token', hint: 'authorization', pattern: /\bauthorization["']?\s*[:=]\s*["']?(?:bearer|token|basic)\s+([A-Za-z0-9._~+/-]{8,}=*)/dgi, group: 1 },
  { kind: 'token', hint: 'bearer', pattern: /\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)/dgi, group: 1, accept: (v) => looksRandom(v) || (/[._~+/-]/.test(v) && /\d/.test(v)) },
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
  'str', 'string', 'bytes', 'text', 'secretstr', 'optional', 'any', 'unknown',
  // code: `token = await fetchToken()`, `key = new Key(…)`
  'await', 'new', 'yield', 'typeof', 'function', 'async', 'lambda', 'self', 'this', 'return']);

/** Labels whose value is a secret; a prefix such as `DB_` or `github-` may come before them. */
const LABEL = '(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|secret[_-]?key|api[_-]?key|apikey|access[_-]?key|account[_-]?key|token|access[_-]?token|auth[_-]?token|refresh[_-]?token|id[_-]?token|session[_-]?token)';

function kindOfLabel(label: string): SecretKind {
  if (/(?:api[_-]?key|apikey|access[_-]?key|account[_-]?key)$/i.test(label)) return 'api_key';
  if (/token$/i.test(label)) return 'token';
  return 'password';
}

/**
 * `password=hunter2`, `"api_key": "…"`, `GITHUB_TOKEN: abc…` (YAML, env files, JSON, prose): the
 * label stays, the value goes. Values that are code rather than a secret (a call, a member
 * access, a variable reference, a literal like null, a type) are left alone.
 */
const ASSIGNMENT = new RegExp(
  `(?<![A-Za-z0-9_-])["']?((?:[A-Za-z0-9]+[_-])*?${LABEL}|(?:[A-Za-z0-9]+[_-])+pass)["']?[ \\t]*(:|=(?!=)|=>)[ \\t]*(?:(["'\`])([^"'\`\\n]*)\\3|([^\\s"'\`,;)}\\]]+))`,
  'gi',
);

/** `--password hunter2`, `--account-key=…` on a command line. */
const CLI_FLAG = new RegExp(`(?<![\\w-])--((?:[A-Za-z0-9]+-)*?${LABEL})(?:[ \\t]+|=)(["']?)([^\\s"'\`]{4,})\\2(?![^\\s"'\`])`, 'gi');

/** `AZURE_STORAGE_KEY=…`, `SIGNING_KEY: …`: an environment variable named …_KEY holding a long random value. */
const ENV_KEY = /(?<![A-Za-z0-9_])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_KEY["']?[ \t]*[=:][ \t]*(["']?)([A-Za-z0-9+/=_.~-]{16,})\1(?![A-Za-z0-9+/=_.~-])/dg;

function isPlaceholder(value: string): boolean {
  return value.length < 3 || /^[*x•.]+$/i.test(value) || /^[$%{<[]/.test(value) || value.includes('${');
}

/** A label at the end of a name, after a separator or a camelCase hump. */
const CREDENTIAL_NAME = new RegExp(`(?:^|[^A-Za-z]|(?<=[a-z])(?=[A-Z]))(${LABEL}|(?<=^|[_-])pass)$`, 'i');

/** A key or field named like a credential (`password`, `DB_PASS`, `apiKey`, `client_secret`): the kind of its value, or null. */
export function credentialName(name: string): SecretKind | null {
  const m = CREDENTIAL_NAME.exec(name);
  return m ? kindOfLabel(m[1]!) : null;
}

/** Whether a value under a credential's name is one, rather than a placeholder or a word like `none`. */
export function holdsValue(value: string): boolean {
  const v = value.trim();
  return !isPlaceholder(v) && !NOT_A_VALUE.has(v.toLowerCase());
}

function assignments(text: string, out: Found[]): void {
  for (const m of text.includes('_KEY') ? text.matchAll(ENV_KEY) : []) {
    if (looksRandom(m[2]!)) out.push({ start: m.indices![2]![0], end: m.indices![2]![1], kind: 'api_key' });
  }
  for (const m of text.matchAll(CLI_FLAG)) {
    const value = m[3]!;
    if (isPlaceholder(value) || value.startsWith('-')) continue;
    const start = m.index + m[0].length - value.length - m[2]!.length;
    out.push({ start, end: start + value.length, kind: kindOfLabel(m[1]!) });
  }
  for (const m of text.matchAll(ASSIGNMENT)) {
    const kind = kindOfLabel(m[1]!);
    const quoted = m[4];
    const value = quoted ?? m[5]!;
    if (isPlaceholder(value)) continue;
    if (quoted === undefined) {
      if (value.length < 4 || NOT_A_VALUE.has(value.toLowerCase())) continue;
      // Code: a call, a subscript, a member access such as process.env.X, a type in a signature (`token: Token)`).
      if (/[()[\]]/.test(value) || /^[A-Za-z_$][A-Za-z_$]*(?:\.[A-Za-z_$][A-Za-z_$]*)+$/.test(value)) continue;
      if (/^[A-Za-z]+$/.test(value) && /^\s*(?:[),|>[]|=[^=])/.test(text.slice(m.index + m[0].length))) continue;
    }
    const start = m.index + m[0].length - value.length - (quoted !== undefined ? 1 : 0);
    out.push({ start, end: start + value.length, kind });
  }
}

/**
 * `my password is hunter2`, `the Mailgun key is key-…`: prose has no `=` or `:`, so the value must
 * look like a credential: letters and digits, not code, a version or a compound like
 * `base64-encoded`; after a key, token or secret at least 16 characters of them.
 */
const IS_FORM = /\b((?:[A-Za-z0-9]+[ _-])?(?:password|passphrase|passwd|pwd|token|secret|key))[ \t]+is[ \t]+(["'`]?)([^\s"'`,;()]{6,})\2/gi;

function proseValues(text: string, out: Found[]): void {
  for (const m of text.matchAll(IS_FORM)) {
    // A sentence's full stop is not part of the value.
    const value = m[2] === '' ? m[3]!.replace(/[.!?:]$/, '') : m[3]!;
    if (!/\d/.test(value) || !/[A-Za-z]/.test(value) || /^[a-z0-9]+(?:-[a-z]{3,})+$/.test(value) || /^v?\d+(?:\.\d+)+/.test(value)) continue;
    const label = m[1]!.toLowerCase();
    const password = /pass|pwd/.test(label);
    if (value.length < (password ? 6 : 16)) continue;
    const start = m.index + m[0].length - m[3]!.length - m[2]!.length;
    out.push({ start, end: start + value.length, kind: password ? 'password' : label.endsWith('token') ? 'token' : 'api_key' });
  }
}

/** The words every label of LABEL contains one of. */
const LABEL_HINTS = ['pass', 'pwd', 'secret', 'key', 'token'];

/** Adds what the rules above find in `text` (`lower` is its lower case) to `out`. */
export function genericFindings(text: string, lower: string, out: Found[]): void {
  for (const rule of RULES) {
    if (rule.hint !== undefined && !lower.includes(rule.hint)) continue;
    for (const m of text.matchAll(rule.pattern)) {
      const g = rule.group ?? 0;
      const value = m[g];
      if (value === undefined || value === '') continue;
      if (rule.accept && !rule.accept(value)) continue;
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
  if (LABEL_HINTS.some((h) => lower.includes(h))) {
    assignments(text, out);
    if (lower.includes(' is ')) proseValues(text, out);
  }
}
