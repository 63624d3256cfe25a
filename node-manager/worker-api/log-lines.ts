import type { LogLine, LogStream } from '../contract/worker-api';
import { utf8Boundary } from '../sandbox/output-capture';

export interface JobLogLimits {
  /** A line longer than this many bytes is cut into pieces of at most this size. */
  maxLineBytes: number;
  /** Kept lines; older ones are dropped (counted in `dropped`). */
  maxLines: number;
  /** Kept text bytes, across kept lines. */
  maxBytes: number;
  /** A partial line is sent after this much quiet on its stream, so a prompt without newline still shows. */
  quietMs: number;
}

export const DEFAULT_JOB_LOG_LIMITS: JobLogLimits = { maxLineBytes: 16 * 1024, maxLines: 10_000, maxBytes: 4 * 1024 * 1024, quietMs: 200 };

/** What a finished job's log is saved as, next to its result. */
export interface SavedJobLog {
  dropped: number;
  lines: LogLine[];
}

const NEWLINE = 0x0a;
const CR = '\r';

interface Pending {
  bytes: Buffer;
  timer?: NodeJS.Timeout;
  /** The last line of this stream went out without its newline (quiet or too long): that newline ends it, it starts no empty line. */
  open: boolean;
}

/**
 * One job's output as lines, each numbered by a dense per-job `seq` from 1, so a caller that
 * comes back with the last seq it saw gets the rest exactly once. Memory is bounded: the oldest
 * lines go first once the limits are reached, and `dropped` says how many went.
 */
export class JobLog {
  private readonly limits: JobLogLimits;
  private readonly pending: Record<LogStream, Pending> = { stdout: { bytes: Buffer.alloc(0), open: false }, stderr: { bytes: Buffer.alloc(0), open: false } };
  /** Kept lines are lines[head..]; the front is compacted now and then rather than shifted per line. */
  private lines: LogLine[] = [];
  private head = 0;
  private keptBytes = 0;
  private nextSeq = 1;
  private droppedLines = 0;
  private finished = false;
  private readonly followers = new Set<(line: LogLine) => void>();

  constructor(limits: Partial<JobLogLimits> = {}) {
    this.limits = { ...DEFAULT_JOB_LOG_LIMITS, ...limits };
  }

  /** A finished job's log as it was saved. */
  static restore(saved: SavedJobLog): JobLog {
    const log = new JobLog({ maxLines: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER });
    log.lines = [...saved.lines];
    log.droppedLines = saved.dropped;
    log.nextSeq = (saved.lines.at(-1)?.seq ?? saved.dropped) + 1;
    log.finished = true;
    return log;
  }

  get dropped(): number {
    return this.droppedLines;
  }

  /** The seq of the newest line (0 before the first). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  get ended(): boolean {
    return this.finished;
  }

  push(stream: LogStream, chunk: Buffer): void {
    if (this.finished || chunk.length === 0) return;
    const p = this.pending[stream];
    let bytes = p.bytes.length ? Buffer.concat([p.bytes, chunk]) : chunk;
    let nl: number;
    while ((nl = bytes.indexOf(NEWLINE)) >= 0) {
      this.completeLine(stream, bytes.subarray(0, nl));
      bytes = bytes.subarray(nl + 1);
    }
    while (bytes.length > this.limits.maxLineBytes) {
      const cut = utf8Boundary(bytes.subarray(0, this.limits.maxLineBytes)) || this.limits.maxLineBytes;
      this.emit(stream, bytes.subarray(0, cut).toString('utf8'));
      p.open = true;
      bytes = bytes.subarray(cut);
    }
    // Copied: the caller may reuse its buffer once push returns.
    p.bytes = Buffer.from(bytes);
    clearTimeout(p.timer);
    p.timer = p.bytes.length ? setTimeout(() => this.flushQuiet(stream), this.limits.quietMs).unref() : undefined;
  }

  /** The job ended: what is left of a line goes out, and nothing comes after. */
  end(): void {
    if (this.finished) return;
    for (const stream of ['stdout', 'stderr'] as const) {
      const p = this.pending[stream];
      clearTimeout(p.timer);
      const text = stripCr(p.bytes.toString('utf8'));
      if (p.bytes.length && !(p.open && text === '')) this.emit(stream, text);
      p.bytes = Buffer.alloc(0);
    }
    this.finished = true;
    this.followers.clear();
  }

  /** Kept lines with seq > after, oldest first. */
  since(after: number): LogLine[] {
    const first = this.lines[this.head]?.seq ?? this.nextSeq;
    return this.lines.slice(this.head + Math.max(0, Math.floor(after) - first + 1));
  }

  /**
   * Hands `onLine` the kept lines after `after` at once, then every new line as it is made, in
   * seq order with none twice. Returns the function that stops following.
   */
  follow(after: number, onLine: (line: LogLine) => void): () => void {
    for (const line of this.since(after)) onLine(line);
    if (this.finished) return () => {};
    this.followers.add(onLine);
    return () => this.followers.delete(onLine);
  }

  snapshot(): SavedJobLog {
    return { dropped: this.droppedLines, lines: this.lines.slice(this.head) };
  }

  private completeLine(stream: LogStream, bytes: Buffer): void {
    const p = this.pending[stream];
    const text = stripCr(bytes.toString('utf8'));
    const ends = p.open && text === '';
    p.open = false;
    if (ends) return;
    if (bytes.length <= this.limits.maxLineBytes) {
      this.emit(stream, text);
      return;
    }
    let rest = Buffer.from(text);
    while (rest.length > 0) {
      const cut = rest.length <= this.limits.maxLineBytes ? rest.length : utf8Boundary(rest.subarray(0, this.limits.maxLineBytes)) || this.limits.maxLineBytes;
      this.emit(stream, rest.subarray(0, cut).toString('utf8'));
      rest = rest.subarray(cut);
    }
  }

  private flushQuiet(stream: LogStream): void {
    const p = this.pending[stream];
    p.timer = undefined;
    // Half a character waits for its other bytes.
    const cut = utf8Boundary(p.bytes);
    if (cut === 0) return;
    this.emit(stream, p.bytes.subarray(0, cut).toString('utf8'));
    p.open = true;
    p.bytes = Buffer.from(p.bytes.subarray(cut));
  }

  private emit(stream: LogStream, text: string): void {
    const line: LogLine = { seq: this.nextSeq++, stream, text };
    this.lines.push(line);
    this.keptBytes += Buffer.byteLength(text);
    while (this.lines.length - this.head > 1 && (this.lines.length - this.head > this.limits.maxLines || this.keptBytes > this.limits.maxBytes)) {
      this.keptBytes -= Buffer.byteLength(this.lines[this.head]!.text);
      this.head++;
      this.droppedLines++;
    }
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
    for (const follower of this.followers) {
      try {
        follower(line);
      } catch {
        // One caller's broken connection must not cost the others (or the log) a line.
      }
    }
  }
}

const stripCr = (text: string) => (text.endsWith(CR) ? text.slice(0, -1) : text);
