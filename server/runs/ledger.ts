/**
 * The run ledger: every run's append-only event log with a dense, 1-based `seq` per run.
 *
 * Public API (what other domains build on):
 *
 * - `ledger.append(runId, events)` → `{ lastSeq, seqs }`: appends in one transaction, seqs in
 *   input order (null for an event dropped as a duplicate of its `idempotencyKey`). Appends are
 *   group-committed across runs: while a flush is in flight, later appends (to any run) queue and
 *   go together in the next one, one transaction and one commit for all. Listeners learn of new
 *   events through NOTIFY `run_events` with payload `<run_id>:<last_seq>` at commit (the hub,
 *   ./hub.ts, fans them out).
 * - `ledger.setStatus(runId, status, data?)`: a `status` event `{status, ...data}` and
 *   `runs.status` in the same statement; the event is what streams show.
 * - `ledger.read(runId, after, limit)`: events with seq > after, oldest first.
 * - `appendEvents(tx, runId, events, {status})` and `appendBatches(tx, [...])` (./store.ts): the
 *   same append inside a caller's own transaction (the dispatcher writes job and run state
 *   together), notified at its commit.
 * - `insertRun(tx, {...})` (./store.ts): a new run with its first `status` event.
 *
 * Kinds: `status` (data.status), `log` (stream stdout|stderr, message = one line), `event`
 * (structured, data), `command`, `process`, `transcript` (for the domains that add them).
 */
import type { Db } from '../db';
import { appendBatches, appendEvents, eventsAfter, type NewRunEvent, type RunEventRow, type RunStatus } from './store';

interface Pending {
  runId: string;
  events: readonly NewRunEvent[];
  resolve(r: { lastSeq: number; seqs: Array<number | null> }): void;
  reject(err: unknown): void;
}

/** Most events written in one transaction; more waits for the next flush. */
const MAX_BATCH = 5000;

export class Ledger {
  /** Appends waiting for the flush in flight. */
  private queue: Pending[] = [];
  private flushing = false;

  constructor(private readonly db: Db) {}

  append(runId: string, events: readonly NewRunEvent[]): Promise<{ lastSeq: number; seqs: Array<number | null> }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ runId, events, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** A status change: the run's status and its `status` event together. */
  async setStatus(runId: string, status: RunStatus, data: Record<string, unknown> = {}, error: string | null = null): Promise<number> {
    const r = await this.db.transaction((tx) => appendEvents(tx, runId, [{ kind: 'status', data: { ...data, status } }], { status, error }));
    return r.lastSeq;
  }

  read(runId: string, after: number, limit: number): Promise<RunEventRow[]> {
    return eventsAfter(this.db, runId, after, limit);
  }

  /**
   * One flush at a time, so appends to a run reach the ledger in the order they were made; each
   * takes whatever queued meanwhile. Whole appends only, so each caller's events stay contiguous
   * and all-or-nothing.
   */
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        let size = 0;
        let take = 0;
        while (take < this.queue.length && (take === 0 || size + this.queue[take]!.events.length <= MAX_BATCH)) size += this.queue[take++]!.events.length;
        const batch = this.queue.splice(0, take);
        try {
          const answers = await this.db.transaction((tx) => appendBatches(tx, batch.map((p) => ({ runId: p.runId, events: p.events }))));
          batch.forEach((p, i) => {
            const a = answers[i];
            if (a) p.resolve(a);
            else p.reject(new Error(`run ${p.runId} does not exist`));
          });
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
