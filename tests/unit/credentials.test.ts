import { describe, expect, it } from 'vitest';
import { bearerToken, sameSecret } from '../../server/http/credentials';

describe('bearerToken', () => {
  it('reads the token of a Bearer header, whatever the scheme case and spacing', () => {
    expect(bearerToken('Bearer abc.def-ghi')).toBe('abc.def-ghi');
    expect(bearerToken('bearer   tok=')).toBe('tok=');
    expect(bearerToken('Bearer tok ')).toBe('tok');
  });

  it('refuses anything else', () => {
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer a b', 'Bearertok', `Bearer ${'x'.repeat(4097)}`]) expect(bearerToken(h)).toBeNull();
  });
});

describe('sameSecret', () => {
  it('is true only for equal strings, of any length', () => {
    expect(sameSecret('s3cret', 's3cret')).toBe(true);
    expect(sameSecret('s3cret', 's3cres')).toBe(false);
    expect(sameSecret('s3cret', 's3cret-longer')).toBe(false);
    expect(sameSecret('', '')).toBe(true);
  });
});
