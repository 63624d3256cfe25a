import type { Db } from '../db';
import { NodeCallError } from '../nodes/node-client';
import type { Ledger } from '../runs/ledger';
import { jobRunId, lastStreamedLine, streamedLineKey } from '../runs/record';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * A sandbox job's output lines on their way into its run's ledger as the node streams them: one
 * append per line, which the ledger batches per run (group commit); the node's seq is the
 * idempotency key, so a line a re-attached call receives again is stored once, and the call
 * asks only for lines after the last one the ledger has.
 */
export class JobLogs {
  /** Lines reached the ledger through the stream (now or before a re-attach): the result's copy is not needed. */
  streamed: boolean;
  /** The latest append: the ledger flushes a run's appends in order, so this settles last. */
  private last: Promise<unknown> = Promise.resolve();
  private firstFailed: number | undefined;
  private failure: unknown;

  private constructor(
    private readonly ledger: Ledger,
    private readonly runId: string,
    private readonly jobId: string,
    public lastSeq: number,
  ) {
    this.streamed = lastSeq > 0;
  }

  static async open(db: Db, ledger: Ledger, jobId: string): Promise<JobLogs | undefined> {
    const runId = await jobRunId(db, jobId);
    return runId ? new JobLogs(ledger, runId, jobId, await lastStreamedLine(db, runId, jobId)) : undefined;
  }

  readonly onLog = (line: { seq: number; stream: 'stdout' | 'stderr'; text: string }): void => {
    if (line.seq <= this.lastSeq) return;
    this.lastSeq = line.seq;
    this.streamed = true;
    this.last = this.ledger.append(this.runId, [{ kind: 'log', stream: line.stream, message: line.text, idempotencyKey: streamedLineKey(this.jobId, line.seq) }]).catch((err: unknown) => {
      if (this.firstFailed === undefined || line.seq < this.firstFailed) this.firstFailed = line.seq;
      this.failure = err;
    });
  };

  /**
   * Every line so far is in the ledger (the run's end comes after them). A line that could not
   * be stored fails the call as transient; the retry asks the node again from that line on.
   */
  async settled(): Promise<void> {
    await this.last;
    if (this.firstFailed !== undefined) {
      this.lastSeq = this.firstFailed - 1;
      this.firstFailed = undefined;
      throw new NodeCallError(`could not store the job's output: ${message(this.failure)}`, true);
    }
  }
}
