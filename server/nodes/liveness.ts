import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import { markStale } from './store';

/**
 * Marks active nodes whose last report is older than `staleAfterSeconds` as `stale` (they stop
 * being dispatchable), with one `node_stale` audit row each, in one transaction. Returns the ids
 * of the nodes that went stale in this call; each node is returned once per silence, by exactly
 * one caller, even with several orchestrators on one database. A report makes it active again.
 */
export async function markStaleNodes(db: Db, staleAfterSeconds: number): Promise<string[]> {
  return db.transaction(async (tx) => {
    const stale = await markStale(tx, staleAfterSeconds);
    for (const n of stale) {
      await appendAudit(tx, {
        category: 'admin',
        action: 'node_stale',
        outcome: 'success',
        actorId: null,
        resourceType: 'node',
        resourceId: n.id,
        scopeType: 'system',
        reason: `no capability report for more than ${staleAfterSeconds} s`,
        details: { node_slug: n.node_slug, last_seen_at: n.last_seen_at ? n.last_seen_at.toISOString() : null },
      });
    }
    return stale.map((n) => n.id);
  });
}

/** Called with the ids of nodes that just went stale: e.g. the dispatcher requeues their jobs. */
export type StaleListener = (nodeIds: string[]) => void | Promise<void>;

export interface NodeLivenessOptions {
  staleAfterSeconds: number;
  /** How often to look; default a third of the stale window, between 250 ms and 10 s. */
  intervalMs?: number;
  /** Where failures of a check or of a listener are reported (they never stop the timer). */
  onError?: (err: unknown, what: string) => void;
}

/**
 * The staleness monitor: a timer that runs `markStaleNodes` and tells listeners which nodes went
 * stale. A node is noticed within staleAfterSeconds + intervalMs of its last report.
 *
 * Right after start it waits one full stale window before marking anything: while the
 * orchestrator was down no node could report, and each deserves a chance to do so before its
 * work is taken away.
 */
export class NodeLiveness {
  private readonly listeners = new Set<StaleListener>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private notBefore = 0;
  readonly intervalMs: number;

  constructor(
    private readonly db: Db,
    private readonly opts: NodeLivenessOptions,
  ) {
    this.intervalMs = opts.intervalMs ?? Math.min(10_000, Math.max(250, Math.floor((opts.staleAfterSeconds * 1000) / 3)));
  }

  /** Adds a listener; returns a function that removes it. */
  onStale(listener: StaleListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.timer) return;
    this.notBefore = Date.now() + this.opts.staleAfterSeconds * 1000;
    this.timer = setInterval(() => {
      if (this.running || Date.now() < this.notBefore) return;
      this.running = this.check().finally(() => (this.running = undefined));
    }, this.intervalMs);
    // The timer alone must not keep a process alive that is otherwise done.
    this.timer.unref();
  }

  /** Stops the timer and waits for a check in progress, so the database can close after it. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One check now (also what the timer runs); resolves to the ids that went stale. */
  async check(): Promise<string[]> {
    let ids: string[];
    try {
      ids = await markStaleNodes(this.db, this.opts.staleAfterSeconds);
    } catch (err) {
      this.opts.onError?.(err, 'marking stale nodes');
      return [];
    }
    if (ids.length > 0) {
      for (const listener of this.listeners) {
        try {
          await listener(ids);
        } catch (err) {
          this.opts.onError?.(err, 'a stale-node listener');
        }
      }
    }
    return ids;
  }
}
