/**
 * The run ledger: every run's append-only event log with a dense, 1-based `seq` per run.
 *
 * Public API (what other domains build on):
 *
 * - `ledger.append(runId, events)` → `{ lastSeq, seqs }`: appends in one transaction, seqs in
 *   input order (null for an event dropped as a duplicate of its `idempotencyKey`). Concurrent
 *   appends to one run are group-committed: while a flush for the run is in flight, later appends
 *   queue and go together in the next one. Listeners learn of the new events through NOTIFY
 *   `run_events` with payload `<run_id>:<last_seq>` at commit (the hub, ./hub.ts, fans them out).
 * - `ledger.setStatus(runId, status, data?)`: a `status` event `{status, ...data}` and
 *   `runs.status` in the same statement; the event is what streams show.
 * - `ledger.read(runId, after, limit)`: events with seq > after, oldest first.
 * - `appendEvents(tx, runId, events, {status})` (./store.ts): the same append inside a caller's
 *   own transaction (the dispatcher writes job and run state together), notified at its commit.
 * - `insertRun(tx, {...})` (./store.ts): a new run with its first `status` event.
 *
 * Kinds: `status` (data.status), `log` (stream stdout|stderr, message = one line), `event`
 * (structured, data), `command`, `process`, `transcript` (for the domains that add them).
 */
import type { Db } from '../db';
import { appendEvents, eventsAfter, type NewRunEvent, type RunEventRow, type RunStatus } from './store';

interface Pending {
  events: readonly NewRunEvent[];
  resolve(r: { lastSeq: number; seqs: Array<number | null> }): void;
  reject(err: unknown): void;
}

/** Largest batch written in one statement; more waits for the next flush of the run. */
const MAX_BATCH = 2000;

export class Ledger {
  /** Appends waiting for the flush in flight of their run. */
  private readonly queues = new Map<string, Pending[]>();
  private readonly flushing = new Set<string>();

  constructor(private readonly db: Db) {}

  append(runId: string, events: readonly NewRunEvent[]): Promise<{ lastSeq: number; seqs: Array<number | null> }> {
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(runId);
      if (!queue) this.queues.set(runId, (queue = []));
      queue.push({ events, resolve, reject });
      if (!this.flushing.has(runId)) void this.flush(runId);
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

  private async flush(runId: string): Promise<void> {
    this.flushing.add(runId);
    try {
      for (;;) {
        const queue = this.queues.get(runId);
        if (!queue || queue.length === 0) break;
        // Whole appends only, so each caller's events stay contiguous and are all-or-nothing.
        const batch: Pending[] = [];
        let size = 0;
        while (queue.length > 0 && (batch.length === 0 || size + queue[0]!.events.length <= MAX_BATCH)) {
          const p = queue.shift()!;
          batch.push(p);
          size += p.events.length;
        }
        try {
          const all = batch.flatMap((p) => p.events);
          const r = await this.db.transaction((tx) => appendEvents(tx, runId, all));
          let at = 0;
          for (const p of batch) {
            p.resolve({ lastSeq: r.lastSeq, seqs: r.seqs.slice(at, at + p.events.length) });
            at += p.events.length;
          }
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing.delete(runId);
      if (this.queues.get(runId)?.length === 0) this.queues.delete(runId);
    }
  }
}
