/** Characters no POSIX shell treats specially anywhere in an argument (no globs, no `~`, no quotes). */
const PLAIN_WORD = /^[A-Za-z0-9_./:@%+=,-]+$/;

/**
 * A string as one shell word that the shell passes on unchanged: a plain word as it is (a join
 * command stays readable), anything else single-quoted, each `'` written as `'\''`. The empty
 * string is `''`.
 */
export function shellQuote(s: string): string {
  return PLAIN_WORD.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
