import { describe, expect, it } from 'vitest';
import { OutputCapture, utf8Boundary } from '../../node-manager/sandbox/output-capture';

const capture = (cap: number, ...chunks: Array<string | Buffer>) => {
  const c = new OutputCapture(cap);
  for (const chunk of chunks) c.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return c;
};

describe('OutputCapture', () => {
  it('keeps output under the cap whole', () => {
    const c = capture(10, 'abc', 'def');
    expect(c.text()).toBe('abcdef');
    expect(c.truncated).toBe(false);
  });

  it('output of exactly the cap is not truncated', () => {
    const c = capture(6, 'abc', 'def', Buffer.alloc(0));
    expect(c.text()).toBe('abcdef');
    expect(c.truncated).toBe(false);
  });

  it('keeps the first bytes across chunks and flags the rest', () => {
    const c = capture(5, 'abc', 'def', 'ghi');
    expect(c.text()).toBe('abcde');
    expect(c.truncated).toBe(true);
  });

  it.each([
    ['2-byte', 'é', 1],
    ['3-byte', '€', 1],
    ['3-byte', '€', 2],
    ['4-byte', '😀', 1],
    ['4-byte', '😀', 3],
  ])('cuts back before a %s character split by the cap', (_kind, ch, partial) => {
    const c = capture(2 + partial, 'ab' + ch + 'cd');
    expect(c.text()).toBe('ab');
    expect(c.truncated).toBe(true);
  });

  it('keeps a character that ends exactly at the cap', () => {
    const c = capture(2 + Buffer.byteLength('😀'), 'ab😀', 'more');
    expect(c.text()).toBe('ab😀');
    expect(c.truncated).toBe(true);
  });

  it('decodes bytes the program wrote as they are when nothing was cut', () => {
    // A lone lead byte at the end is the program's output, not our cut.
    const c = capture(10, Buffer.from([0x61, 0xc3]));
    expect(c.truncated).toBe(false);
    expect(c.text()).toBe('a\uFFFD');
  });

  it('does not keep a reference to the caller buffer', () => {
    const chunk = Buffer.from('abc');
    const c = capture(10, chunk);
    chunk.fill(0x7a);
    expect(c.text()).toBe('abc');
  });
});

describe('utf8Boundary', () => {
  it('is the full length for ASCII, complete characters and empty input', () => {
    expect(utf8Boundary(Buffer.from('hello'))).toBe(5);
    expect(utf8Boundary(Buffer.from('é€😀'))).toBe(Buffer.byteLength('é€😀'));
    expect(utf8Boundary(Buffer.alloc(0))).toBe(0);
  });

  it('ends before an incomplete trailing sequence', () => {
    const full = Buffer.from('x😀');
    for (let cut = 2; cut < full.length; cut++) expect(utf8Boundary(full.subarray(0, cut))).toBe(1);
  });
});
