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
 * - `appendEvents(tx, runId, events, {status})` (./record.ts) and `appendBatches(tx, [...])` (./store.ts): the
 *   same append inside a caller's own transaction (the dispatcher writes job and run state
 *   together), notified at its commit.
 * - `insertRun(tx, {...})` (./record.ts): a new run with its first `status` event.
 *
 * Kinds: `status` (data.status), `log` (stream stdout|stderr, message = one line), `event`
 * (structured, data), `command`, `process`, `transcript` (for the domains that add them).
 */
import type { Db } from '../db';
import { GroupCommit } from '../db/group-commit';
import { unstorable } from '../db/storable';
import { badRequest } from '../http/problem';
import { redactAll, redactJson } from '../redaction/redaction';
import { appendEvents } from './record';
import type { RunStatus } from './status';
import { appendBatches, eventsAfter, type NewRunEvent, type RunEventRow } from './store';

type Appended = { lastSeq: number; seqs: Array<number | null> };

/**
 * Log lines (from clients and from a node's sandboxes) are stored redacted, like chat messages.
 * A flush's lines are redacted together: that costs a fraction of one call per line, and a secret
 * printed over several lines (a private key) is seen whole.
 */
export async function redactLogs<T extends { events: readonly NewRunEvent[] }>(batch: T[]): Promise<T[]> {
  const logs = batch.flatMap((a) => a.events.filter((e) => e.kind === 'log'));
  if (logs.length === 0) return batch;
  const lines = await redactAll(
    logs.map((e) => e.message ?? ''),
    { remember: false },
  );
  const data = await Promise.all(logs.map((e) => (e.data === null || e.data === undefined ? e.data : redactJson(e.data, { remember: false }).then((r) => r.value))));
  const clean = new Map(logs.map((e, i) => [e, { ...e, message: e.message === null || e.message === undefined ? e.message : lines.texts[i]!, data: data[i] }]));
  return batch.map((a) => ({ ...a, events: a.events.map((e) => clean.get(e) ?? e) }));
}

/** Most events written in one transaction; more waits for the next flush. */
const MAX_BATCH = 5000;

export class Ledger {
  /**
   * Appends queued while a flush is in flight go together in the next transaction, whole appends
   * only, so each caller's events stay contiguous and all-or-nothing.
   */
  private readonly commits: GroupCommit<{ runId: string; events: readonly NewRunEvent[] }, Appended | null>;

  constructor(private readonly db: Db) {
    this.commits = new GroupCommit(
      async (batch) => {
        const clean = await redactLogs(batch);
        return db.transaction((tx) => appendBatches(tx, clean));
      },
      MAX_BATCH,
      (a) => a.events.length,
    );
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
