import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, storableText, unstorable } from '../../server/db/storable';

const nested = (levels: number): unknown => {
  let v: unknown = 'leaf';
  for (let i = 0; i < levels; i++) v = [v];
  return v;
};

describe('what the database can store', () => {
  it('accepts ordinary JSON, emoji (surrogate pairs) included', () => {
    expect(unstorable({ a: ['text', 1, null, true, { 'ключ': 'значение 🎉' }] }, 'body')).toBeUndefined();
    expect(unstorable(nested(MAX_JSON_DEPTH), 'body')).toBeUndefined();
  });

  it('names where a NUL or an unpaired surrogate is, in values and in keys', () => {
    expect(unstorable({ entries: [{ data: { note: 'a\u0000b' } }] }, 'body')).toBe('body.entries[0].data.note must not contain NUL (\\u0000) characters');
    expect(unstorable({ m: 'x\ud800' }, 'body')).toBe('body.m must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)');
    expect(unstorable({ m: '\udc00x' }, 'body')).toMatch(/^body\.m must not contain unpaired/);
    expect(unstorable({ m: { 'k\u0000': 1 } }, 'body')).toBe('body.m must not have keys that contain NUL (\\u0000) characters');
    expect(unstorable('\u0000', 'params')).toBe('params must not contain NUL (\\u0000) characters');
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels without running out of stack`, () => {
    expect(unstorable(nested(MAX_JSON_DEPTH + 1), 'body')).toMatch(new RegExp(`^body\\[0\\]\\[0\\].*… nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels$`));
    expect(unstorable({ m: nested(100_000) }, 'body')).toMatch(/nests arrays and objects deeper/);
  });

  it('makes a program\'s output storable by replacing what cannot be stored with U+FFFD', () => {
    expect(storableText('a\u0000b\ud800c 🎉')).toBe('a\uFFFDb\uFFFDc 🎉');
    const plain = 'nothing to replace';
    expect(storableText(plain)).toBe(plain);
  });
});
