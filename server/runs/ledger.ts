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
import { GroupCommit } from '../db/group-commit';
import { unstorable } from '../db/storable';
import { badRequest } from '../http/problem';
import { appendBatches, appendEvents, eventsAfter, type NewRunEvent, type RunEventRow, type RunStatus } from './store';

type Appended = { lastSeq: number; seqs: Array<number | null> };

/** Most events written in one transaction; more waits for the next flush. */
const MAX_BATCH = 5000;

export class Ledger {
  /**
   * Appends queued while a flush is in flight go together in the next transaction, whole appends
   * only, so each caller's events stay contiguous and all-or-nothing.
   */
  private readonly commits: GroupCommit<{ runId: string; events: readonly NewRunEvent[] }, Appended | null>;

  constructor(private readonly db: Db) {
    this.commits = new GroupCommit((batch) => db.transaction((tx) => appendBatches(tx, batch)), MAX_BATCH, (a) => a.events.length);
  }

  async append(runId: string, events: readonly NewRunEvent[]): Promise<Appended> {
    // Refused before it shares a transaction with other runs' appends.
    const bad = unstorable(events, 'events');
    if (bad) throw badRequest(bad);
    const appended = await this.commits.submit({ runId, events });
    if (!appended) throw new Error(`run ${runId} does not exist`);
    return appended;
  }

  /** A status change: the run's status and its `status` event together. */
  async setStatus(runId: string, status: RunStatus, data: Record<string, unknown> = {}, error: string | null = null): Promise<number> {
    const r = await this.db.transaction((tx) => appendEvents(tx, runId, [{ kind: 'status', data: { ...data, status } }], { status, error }));
    return r.lastSeq;
  }

  read(runId: string, after: number, limit: number): Promise<RunEventRow[]> {
    return eventsAfter(this.db, runId, after, limit);
  }
}
