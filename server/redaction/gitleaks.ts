import catalogue from './gitleaks-rules/rules.json';

/*
 * gitleaks' rule catalogue (./gitleaks-rules/rules.json: its config/gitleaks.toml as JSON, MIT licence in
 * ./gitleaks-rules/LICENSE; build/update-gitleaks-rules.ts refreshes it), applied the way gitleaks
 * applies it to one file: keywords pick the rules worth running, the rule's regex finds, its
 * secret group or else its first non-empty group is the secret, the rule's entropy threshold and
 * the global and rule allowlists (regexes, stopwords) drop what is not one. Path conditions have no
 * meaning for a message: rules that need a file path are left out, and an allowlist that needs
 * one never applies.
 */

interface GoAllowlist {
  condition?: string;
  regexTarget?: string;
  regexes?: string[];
  stopwords?: string[];
  paths?: string[];
}

interface GoRule {
  id: string;
  regex?: string;
  secretGroup?: number;
  entropy?: number;
  keywords?: string[];
  path?: string;
  allowlists?: GoAllowlist[];
  skipReport?: boolean;
}

interface Allowlist {
  and: boolean;
  target: 'secret' | 'match' | 'line';
  regex?: RegExp;
  /** Any of the stopwords (lower case; the secret is lowered before the test), or none. */
  stopwords?: RegExp;
  /** An AND allowlist that needs a path never applies. */
  needsPath: boolean;
}

export interface CatalogueRule {
  id: string;
  regex: RegExp;
  /** The rule's leading `[\w.-]{0,50}?` was taken off (see withoutLeadingContext). */
  leadingContext: boolean;
  secretGroup: number;
  entropy: number;
  keywords: string[];
  allowlists: Allowlist[];
}

export interface CatalogueFinding {
  start: number;
  end: number;
  ruleId: string;
  /** What the match holds before the secret: for the generic rule, the label (`DB_PASSWORD=`). */
  before: string;
}

/** Letters with another case: the two spellings as a class. */
function bothCases(c: string): string {
  const lo = c.toLowerCase();
  const up = c.toUpperCase();
  return lo === up ? c : `${lo}${up}`;
}

const POSIX: Record<string, string> = { alnum: 'a-zA-Z0-9', alpha: 'a-zA-Z', digit: '0-9', lower: 'a-z', upper: 'A-Z', xdigit: '0-9A-Fa-f', space: '\\s', punct: '!-\\/:-@\\[-`{-~', word: '\\w' };

/** The body of a character class starting after `[` (and `^`): its JS text and where it ends. */
function translateClass(go: string, from: number, caseless: boolean): { body: string; end: number } {
  let body = '';
  let extra = '';
  let i = from;
  // Go reads a `]` right after the opening bracket as a literal.
  if (go[i] === ']') {
    body += '\\]';
    i++;
  }
  while (i < go.length && go[i] !== ']') {
    const posix = /^\[:(\w+):\]/.exec(go.slice(i));
    if (posix) {
      const set = POSIX[posix[1]!];
      if (set === undefined) throw new Error(`unsupported class [:${posix[1]}:]`);
      body += set;
      i += posix[0].length;
      continue;
    }
    if (go[i] === '\\') {
      const esc = go[i + 1] === 'x' ? go.slice(i, i + 4) : go.slice(i, i + 2);
      body += esc;
      i += esc.length;
      continue;
    }
    const c = go[i]!;
    if (go[i + 1] === '-' && go[i + 2] !== undefined && go[i + 2] !== ']') {
      const to = go[i + 2]!;
      body += `${c === '[' ? '\\[' : c}-${to}`;
      if (caseless && /[a-z]/.test(c) && /[a-z]/.test(to)) extra += `${c.toUpperCase()}-${to.toUpperCase()}`;
      if (caseless && /[A-Z]/.test(c) && /[A-Z]/.test(to)) extra += `${c.toLowerCase()}-${to.toLowerCase()}`;
      i += 3;
      continue;
    }
    body += c === '[' ? '\\[' : c;
    if (caseless) extra += bothCases(c).replace(c, '');
    i++;
  }
  if (i >= go.length) throw new Error('unterminated character class');
  // Added spellings go first: a class may end with a literal `-`.
  return { body: extra + body, end: i + 1 };
}

/**
 * A Go (RE2) pattern as a JavaScript one. Case-insensitive parts (`(?i)`, `(?i:…)`, minus
 * `(?-i:…)`) are spelled out letter by letter, since Node 20's regular expressions have no inline
 * flags; `(?s:…)` turns `.` into `[\s\S]`; `\z` is `$`; named groups become plain groups (the
 * numbering is the same).
 */
export function goToJs(go: string): string {
  let out = '';
  const stack: Array<{ caseless: boolean; dotAll: boolean }> = [];
  let caseless = false;
  let dotAll = false;
  let i = 0;
  while (i < go.length) {
    const c = go[i]!;
    if (c === '\\') {
      const next = go[i + 1];
      if (next === 'z') out += '$';
      else if (next === 'A') out += '^';
      else if (next === 'x') {
        out += go.slice(i, i + 4);
        i += 2;
      } else out += go.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (c === '[') {
      const negated = go[i + 1] === '^';
      const cls = translateClass(go, i + (negated ? 2 : 1), caseless);
      out += `[${negated ? '^' : ''}${cls.body}]`;
      i = cls.end;
      continue;
    }
    if (c === '(') {
      const flags = /^\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])/.exec(go.slice(i));
      if (flags && (flags[1] !== '' || flags[2] !== undefined || flags[3] === ':')) {
        const on = flags[1]!;
        const off = flags[2] ?? '';
        if (/[^is]/.test(on + off)) throw new Error(`unsupported flags (?${on}-${off})`);
        const next: { caseless: boolean; dotAll: boolean } = { caseless: on.includes('i') ? true : off.includes('i') ? false : caseless, dotAll: on.includes('s') ? true : off.includes('s') ? false : dotAll };
        if (flags[3] === ')') {
          // `(?i)`: from here to the end of the enclosing group.
          ({ caseless, dotAll } = next);
        } else {
          stack.push({ caseless, dotAll });
          ({ caseless, dotAll } = next);
          out += '(?:';
        }
        i += flags[0].length;
        continue;
      }
      const named = /^\(\?P?<\w+>/.exec(go.slice(i));
      stack.push({ caseless, dotAll });
      if (named) {
        out += '(';
        i += named[0].length;
      } else {
        out += '(';
        i++;
      }
      continue;
    }
    if (c === ')') {
      const outer = stack.pop();
      if (!outer) throw new Error('unbalanced )');
      ({ caseless, dotAll } = outer);
      out += ')';
      i++;
      continue;
    }
    if (c === '{') {
      // A repeat count is copied whole, so its digits are never read as anything else.
      const count = /^\{\d*(?:,\d*)?\}/.exec(go.slice(i));
      if (count) {
        out += count[0];
        i += count[0].length;
        continue;
      }
    }
    if (c === '.' && dotAll) out += '[\\s\\S]';
    else if (caseless && /[a-zA-Z]/.test(c)) out += `[${bothCases(c)}]`;
    else out += c;
    i++;
  }
  if (stack.length > 0) throw new Error('unbalanced (');
  return out;
}

const compile = (go: string, flags = ''): RegExp => new RegExp(goToJs(go), flags);

/** One alternation of literal words, longest first: a thousand `includes` cost a hundred times more. */
const anyOf = (words: readonly string[], flags = ''): RegExp =>
  new RegExp([...words].sort((a, b) => b.length - a.length).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), flags);

function allowlistOf(a: GoAllowlist): Allowlist {
  return {
    and: a.condition?.toUpperCase() === 'AND',
    target: a.regexTarget === 'match' || a.regexTarget === 'line' ? a.regexTarget : 'secret',
    regex: a.regexes && a.regexes.length > 0 ? compile(a.regexes.map((r) => `(?:${r})`).join('|')) : undefined,
    stopwords: a.stopwords && a.stopwords.length > 0 ? anyOf(a.stopwords.map((w) => w.toLowerCase())) : undefined,
    needsPath: (a.paths ?? []).length > 0,
  };
}

const config = catalogue.config as { allowlist?: GoAllowlist; rules: GoRule[] };

/** The global allowlist: applies to every rule. */
const GLOBAL: Allowlist[] = config.allowlist ? [{ ...allowlistOf(config.allowlist), needsPath: false }] : [];

/*
 * Most rules start with `[\w.-]{0,50}?` (the rest of an identifier before the keyword). It never
 * decides whether there is a match, only where it starts, but a backtracking engine tries it at
 * every position: 50 × 20 × … steps per character, seconds for a crafted 20 KB message (gitleaks'
 * RE2 is linear). It is taken off the regex, and the start of the match is put back where gitleaks
 * has it (the run of up to 50 such characters before) for the allowlists that look at the match.
 */
const LEADING_CONTEXT = /^((?:\(\?i\))?(?:\(\?i:)?)\[\\w\.-\]\{0,50\}\?/;

function withoutLeadingContext(go: string): { go: string; stripped: boolean } {
  let s = go;
  for (let next = s.replace(LEADING_CONTEXT, '$1'); next !== s; next = s.replace(LEADING_CONTEXT, '$1')) s = next;
  return { go: s, stripped: s !== go };
}

/**
 * Rules left out: they scan the rest of the text from every `curl` (quadratic on a crafted
 * message); ./generic.ts covers their credentials (Authorization headers, `-u user:password`).
 */
const LEFT_OUT = new Set(['curl-auth-header', 'curl-auth-user']);

/** Every rule that looks at content alone, compiled once. */
export const CATALOGUE: CatalogueRule[] = config.rules
  .filter((r) => r.regex !== undefined && r.path === undefined && !r.skipReport && !LEFT_OUT.has(r.id))
  .map((r) => {
    try {
      const { go, stripped } = withoutLeadingContext(r.regex!);
      return {
        id: r.id,
        regex: compile(go, 'dg'),
        leadingContext: stripped,
        secretGroup: r.secretGroup ?? 0,
        entropy: r.entropy ?? 0,
        keywords: (r.keywords ?? []).map((k) => k.toLowerCase()),
        allowlists: (r.allowlists ?? []).map(allowlistOf),
      };
    } catch (err) {
      throw new Error(`gitleaks rule ${r.id}: ${(err as Error).message}`, { cause: err });
    }
  });

/*
 * Keyword prefilter: one alternation of every keyword, longest first, searched from each position
 * after the start of the last hit (so overlapping keywords are all seen); a keyword that begins
 * another found at the same place is present too.
 */
const KEYWORDS = [...new Set(CATALOGUE.flatMap((r) => r.keywords))].sort((a, b) => b.length - a.length);
const KEYWORD_SEARCH = anyOf(KEYWORDS, 'g');
const PREFIXES = new Map(KEYWORDS.map((k) => [k, KEYWORDS.filter((o) => o.length < k.length && k.startsWith(o))]));

function keywordsIn(lower: string): Set<string> {
  const found = new Set<string>();
  KEYWORD_SEARCH.lastIndex = 0;
  for (let m = KEYWORD_SEARCH.exec(lower); m; m = KEYWORD_SEARCH.exec(lower)) {
    found.add(m[0]);
    for (const p of PREFIXES.get(m[0]) ?? []) found.add(p);
    KEYWORD_SEARCH.lastIndex = m.index + 1;
  }
  return found;
}

/** Shannon entropy in bits per character, as gitleaks computes it. */
export function entropy(s: string): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let e = 0;
  for (const c of counts.values()) {
    const f = c / s.length;
    e -= f * Math.log2(f);
  }
  return e;
}

function allowed(lists: Allowlist[], secret: string, match: string, line: string): boolean {
  const lower = secret.toLowerCase();
  for (const a of lists) {
    const target = a.target === 'match' ? match : a.target === 'line' ? line : secret;
    const byRegex = a.regex !== undefined && secret !== '' && a.regex.test(target);
    const byStopword = a.stopwords !== undefined && a.stopwords.test(lower);
    if (a.and) {
      if (a.needsPath) continue;
      if ((a.regex === undefined || byRegex) && (a.stopwords === undefined || byStopword)) return true;
    } else if (byRegex || byStopword) return true;
  }
  return false;
}

function lineAround(text: string, start: number, end: number): string {
  const from = text.lastIndexOf('\n', start - 1) + 1;
  const to = text.indexOf('\n', end);
  return text.slice(from, to === -1 ? text.length : to);
}

/** Shorter than this, a group found by a rule without a secret group is not taken for the secret. */
const MIN_SECRET = 8;

/** What gitleaks' catalogue finds in `text`: the range of each secret and the rule that found it. */
export function catalogueFindings(text: string, lower = text.toLowerCase()): CatalogueFinding[] {
  const present = keywordsIn(lower);
  const out: CatalogueFinding[] = [];
  for (const rule of CATALOGUE) {
    if (rule.keywords.length > 0 && !rule.keywords.some((k) => present.has(k))) continue;
    let lastEnd = 0;
    for (const m of text.matchAll(rule.regex)) {
      // gitleaks trims line ends off a match; its secret is the rule's group, else the first non-empty one.
      const found = m[0].replace(/^\n+|\n+$/g, '');
      const foundAt = m.index + m[0].indexOf(found);
      let g = rule.secretGroup;
      if (g === 0) g = m.findIndex((s, i) => i > 0 && s !== undefined && s !== '');
      // A few rules have no secret group and a repeated helper group first (the Teams webhook's
      // `([a-z0-9]{4}-){3}`): a piece that short is not the secret, the whole match goes instead.
      if (rule.secretGroup === 0 && g > 0 && m[g]!.length < MIN_SECRET) g = -1;
      const secret = g > 0 ? (m[g] ?? '') : found;
      if (secret === '') continue;
      const start = g > 0 ? m.indices![g]![0] : foundAt;
      // The match as gitleaks has it, leading context included, for the allowlists that test it.
      let from = foundAt;
      if (rule.leadingContext) while (from > Math.max(0, foundAt - 50, lastEnd) && /[\w.-]/.test(text[from - 1]!)) from--;
      lastEnd = m.index + m[0].length;
      if (rule.entropy > 0 && entropy(secret) <= rule.entropy) continue;
      const match = text.slice(from, foundAt + found.length);
      const line = lineAround(text, from, foundAt + found.length);
      if (allowed(GLOBAL, secret, match, line) || allowed(rule.allowlists, secret, match, line)) continue;
      out.push({ start, end: start + secret.length, ruleId: rule.id, before: text.slice(from, start) });
    }
  }
  return out;
}
