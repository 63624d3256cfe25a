/*
 * What PostgreSQL refuses, found before a value reaches it: NUL in text or jsonb, UTF-16
 * surrogates without their pair (jsonb refuses their escapes; text would silently store U+FFFD
 * instead), and JSON nested deeper than MAX_JSON_DEPTH (JSON.stringify recurses once per level and
 * runs out of stack long before the database would complain). Writes share statements (group
 * commit), so a value refused there would fail other people's writes too: it is refused here, to
 * the writer alone.
 */

/** Deepest nesting of arrays and objects accepted in a request body (the body itself is level 1). */
export const MAX_JSON_DEPTH = 64;

// With the `u` flag, \p{Cs} matches only a surrogate that is not half of a pair.
const UNSTORABLE_CHAR = /[\0\p{Cs}]/u;
const UNSTORABLE_CHARS = /[\0\p{Cs}]/gu;

/**
 * Why `value` cannot be stored, naming where in it (`where` names the value itself, e.g. `body`),
 * or undefined when it can.
 */
export function unstorable(value: unknown, where: string): string | undefined {
  const found = find(value, 1);
  if (!found) return undefined;
  const path = where + found.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${clip(k, 40)}`)).join('');
  return `${clip(path, 160)} ${found.reason}`;
}

/** The text with every character PostgreSQL cannot store replaced by U+FFFD: for output a program wrote, not input to refuse. */
export function storableText(s: string): string {
  return UNSTORABLE_CHAR.test(s) ? s.replace(UNSTORABLE_CHARS, '\uFFFD') : s;
}

type Found = { path: Array<string | number>; reason: string };

function badChars(s: string): string | undefined {
  if (!UNSTORABLE_CHAR.test(s)) return undefined;
  return s.includes('\0') ? 'NUL (\\u0000) characters' : 'unpaired UTF-16 surrogates (\\ud800-\\udfff)';
}

// Recursion stops at MAX_JSON_DEPTH, so it cannot run out of stack; a path is built only on the way
// back from a problem.
function find(value: unknown, depth: number): Found | undefined {
  if (typeof value === 'string') {
    const chars = badChars(value);
    return chars ? { path: [], reason: `must not contain ${chars}` } : undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth > MAX_JSON_DEPTH) return { path: [], reason: `nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = find(value[i], depth + 1);
      if (found) return { path: [i, ...found.path], reason: found.reason };
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const chars = badChars(k);
    if (chars) return { path: [], reason: `must not have keys that contain ${chars}` };
    const found = find(v, depth + 1);
    if (found) return { path: [k, ...found.path], reason: found.reason };
  }
  return undefined;
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
