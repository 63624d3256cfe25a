import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LogLine } from '../../node-manager/contract/worker-api';
import { JobLog } from '../../node-manager/worker-api/log-lines';

const texts = (lines: LogLine[]) => lines.map((l) => l.text);

describe('JobLog', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('splits chunks into lines, joining a line cut across chunks, with a dense seq from 1', () => {
    const log = new JobLog();
    log.push('stdout', Buffer.from('one\ntw'));
    log.push('stdout', Buffer.from('o\nthree\n'));
    expect(log.since(0)).toEqual([
      { seq: 1, stream: 'stdout', text: 'one' },
      { seq: 2, stream: 'stdout', text: 'two' },
      { seq: 3, stream: 'stdout', text: 'three' },
    ]);
    expect(log.lastSeq).toBe(3);
  });

  it('keeps stdout and stderr lines apart and numbers them in the order they complete', () => {
    const log = new JobLog();
    log.push('stdout', Buffer.from('out-'));
    log.push('stderr', Buffer.from('err\n'));
    log.push('stdout', Buffer.from('line\n'));
    expect(log.since(0)).toEqual([
      { seq: 1, stream: 'stderr', text: 'err' },
      { seq: 2, stream: 'stdout', text: 'out-line' },
    ]);
  });

  it('treats CRLF as one line end and keeps empty lines', () => {
    const log = new JobLog();
    log.push('stdout', Buffer.from('a\r\n\r\nb\r'));
    log.push('stdout', Buffer.from('\nc\n'));
    expect(texts(log.since(0))).toEqual(['a', '', 'b', 'c']);
  });

  it('flushes what is left of a line at the end, and takes nothing after', () => {
    const log = new JobLog();
    log.push('stdout', Buffer.from('done\nno newline'));
    log.push('stderr', Buffer.from('half'));
    log.end();
    log.push('stdout', Buffer.from('late\n'));
    expect(log.since(0).map((l) => [l.stream, l.text])).toEqual([
      ['stdout', 'done'],
      ['stdout', 'no newline'],
      ['stderr', 'half'],
    ]);
    expect(log.ended).toBe(true);
  });

  it('sends a partial line after the quiet time; its newline when it comes adds no empty line', () => {
    vi.useFakeTimers();
    const log = new JobLog({ quietMs: 200 });
    log.push('stdout', Buffer.from('Password: '));
    vi.advanceTimersByTime(199);
    expect(log.since(0)).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(texts(log.since(0))).toEqual(['Password: ']);
    log.push('stdout', Buffer.from('\nnext\n'));
    expect(texts(log.since(0))).toEqual(['Password: ', 'next']);
  });

  it('keeps half a UTF-8 character back on a quiet flush until its other bytes arrive', () => {
    vi.useFakeTimers();
    const log = new JobLog({ quietMs: 50 });
    const euro = Buffer.from('€');
    log.push('stdout', Buffer.concat([Buffer.from('price '), euro.subarray(0, 1)]));
    vi.advanceTimersByTime(50);
    log.push('stdout', Buffer.concat([euro.subarray(1), Buffer.from('5\n')]));
    expect(texts(log.since(0))).toEqual(['price ', '€5']);
  });

  it('cuts very long lines into pieces of at most the line limit, never inside a character', () => {
    const log = new JobLog({ maxLineBytes: 16 });
    log.push('stdout', Buffer.from(`${'x'.repeat(15)}é${'y'.repeat(20)}\nshort\n`));
    const lines = texts(log.since(0));
    expect(lines).toEqual(['x'.repeat(15), `é${'y'.repeat(14)}`, 'y'.repeat(6), 'short']);
    for (const l of lines) expect(Buffer.byteLength(l)).toBeLessThanOrEqual(16);
  });

  it('cuts a long line that has no newline yet as it grows; the newline then ends it', () => {
    const log = new JobLog({ maxLineBytes: 10 });
    log.push('stdout', Buffer.from('a'.repeat(25)));
    expect(texts(log.since(0))).toEqual(['a'.repeat(10), 'a'.repeat(10)]);
    log.push('stdout', Buffer.from('bbbbbbbbbb'));
    log.push('stdout', Buffer.from('\n'));
    expect(texts(log.since(0))).toEqual(['a'.repeat(10), 'a'.repeat(10), 'aaaaabbbbb', 'bbbbb']);
  });

  it('keeps at most maxLines, dropping the oldest and counting them; seq keeps counting', () => {
    const log = new JobLog({ maxLines: 100 });
    for (let i = 1; i <= 5000; i++) log.push('stdout', Buffer.from(`line ${i}\n`));
    const kept = log.since(0);
    expect(kept).toHaveLength(100);
    expect(kept[0]).toEqual({ seq: 4901, stream: 'stdout', text: 'line 4901' });
    expect(kept.at(-1)?.seq).toBe(5000);
    expect(log.dropped).toBe(4900);
    expect(log.since(4990).map((l) => l.seq)).toEqual([4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999, 5000]);
  });

  it('keeps at most maxBytes of text', () => {
    const log = new JobLog({ maxBytes: 1000 });
    for (let i = 0; i < 100; i++) log.push('stderr', Buffer.from(`${'z'.repeat(99)}\n`));
    const kept = log.since(0);
    expect(kept).toHaveLength(10);
    expect(log.dropped).toBe(90);
    expect(kept.reduce((n, l) => n + l.text.length, 0)).toBeLessThanOrEqual(1000);
  });

  it('follows: kept lines after the given seq at once, then live ones, each once', () => {
    const log = new JobLog();
    log.push('stdout', Buffer.from('1\n2\n3\n'));
    const seen: LogLine[] = [];
    const unfollow = log.follow(1, (l) => seen.push(l));
    expect(seen.map((l) => l.seq)).toEqual([2, 3]);
    log.push('stdout', Buffer.from('4\n'));
    unfollow();
    log.push('stdout', Buffer.from('5\n'));
    expect(texts(seen)).toEqual(['2', '3', '4']);
  });

  it('restores a saved log with its seq and dropped count', () => {
    const log = new JobLog({ maxLines: 2 });
    log.push('stdout', Buffer.from('a\nb\nc\n'));
    log.end();
    const restored = JobLog.restore(JSON.parse(JSON.stringify(log.snapshot())));
    expect(restored.since(0)).toEqual([
      { seq: 2, stream: 'stdout', text: 'b' },
      { seq: 3, stream: 'stdout', text: 'c' },
    ]);
    expect(restored.dropped).toBe(1);
    expect(restored.lastSeq).toBe(3);
  });
});
