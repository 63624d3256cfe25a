import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuote } from '../../server/lib/shell';

/** What `sh` hands a program for the quoted word: the original string, byte for byte. */
const throughShell = (word: string): string => execFileSync('sh', ['-c', `printf '%s' ${shellQuote(word)}`], { encoding: 'utf8' });

describe('shellQuote', () => {
  it('leaves plain words bare, so a join command stays readable', () => {
    expect(shellQuote('http://127.0.0.1:12345')).toBe('http://127.0.0.1:12345');
    expect(shellQuote('Ab0_-x')).toBe('Ab0_-x');
  });

  it('quotes the empty string, quotes and shell syntax', () => {
    expect(shellQuote('')).toBe("''");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote('[ab]')).toBe("'[ab]'");
  });

  it.each([
    '',
    "it's",
    "''",
    "'",
    'two\nlines',
    'trailing newline\n',
    '$HOME `id` $(id)',
    '"double" \\back\\slash',
    '*.ts ?[a-z] ~root',
    'a;b|c&d>e<f',
    '!event -- --flag',
    'tab\there',
    'ünïcødé ✓',
    '-n',
  ])('survives sh unchanged: %j', (word) => {
    expect(throughShell(word)).toBe(word);
  });
});
