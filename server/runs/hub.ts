import type { Db } from '../db';
import { RUN_EVENTS_CHANNEL, eventsAfterMany, runHeads, type RunEventRow } from './store';

export type RunEventListener = (events: RunEventRow[]) => void;

interface Watched {
  /** Highest seq delivered to this run's listeners (or known to exist when the first one came). */
  cursor: number;
  /** A notification said the run has events past the cursor. */
  behind: boolean;
  listeners: Set<RunEventListener>;
  /** Resolves once the cursor is known. */
  ready: Promise<void>;
}

const UNKNOWN = -1;

/** Events read per run per round; a run further behind is read again at once. */
const READ_LIMIT = 1000;

/**
 * Live fan-out of ledger events inside one process: one LISTEN `run_events` for the process
 * (PGlite delivers in-process, PostgreSQL across processes), one cursor per run that has
 * listeners, and one read of `seq > cursor` per wake-up for all runs that moved, delivered in
 * memory to every listener of the run: the cost of a new event does not grow with the number of
 * listeners. A poll every `pollMs` catches what a lost notification (a reconnecting LISTEN
 * connection) would leave behind.
 *
 * Listeners get events in seq order, each once, starting after the run's last seq at the time
 * `subscribe` resolved; a listener that needs earlier events replays them from the ledger and
 * drops live events it already has (by seq).
 */
export class RunEventHub {
  private readonly runs = new Map<string, Watched>();
  private unlisten: (() => Promise<void>) | undefined;
  private poll: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly opts: { pollMs?: number; onError?: (err: unknown) => void } = {},
  ) {}

  /** Starts listening; from now on errors go to `log` (the gateway's logger in the app). */
  async start(log?: { warn(obj: object, msg: string): void }): Promise<void> {
    if (log) this.opts.onError ??= (err) => log.warn({ err }, 'run event fan-out failed; the next notification or poll retries');
    this.unlisten = await this.db.listen(RUN_EVENTS_CHANNEL, (payload) => this.notified(payload));
    this.poll = setInterval(() => void this.pollHeads(), this.opts.pollMs ?? 1000);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.poll);
    await this.unlisten?.().catch(() => {});
    await this.reading;
    this.runs.clear();
  }

  /** Live events of a run from now on; resolves to the unsubscribe function. */
  async subscribe(runId: string, listener: RunEventListener): Promise<() => void> {
    let w = this.runs.get(runId);
    if (!w) {
      const created: Watched = { cursor: UNKNOWN, behind: false, listeners: new Set(), ready: Promise.resolve() };
      // Until the head is read, notifications only mark the run `behind`.
      created.ready = runHeads(this.db, [runId]).then(
        ([head]) => {
          created.cursor = head?.last_seq ?? 0;
          if (created.behind) this.kick();
        },
        (err: unknown) => {
          if (this.runs.get(runId) === created) this.runs.delete(runId);
          throw err;
        },
      );
      this.runs.set(runId, created);
      w = created;
    }
    await w.ready;
    const watched = w;
    watched.listeners.add(listener);
    return () => {
      watched.listeners.delete(listener);
      if (watched.listeners.size === 0 && this.runs.get(runId) === watched) this.runs.delete(runId);
    };
  }

  /** How many runs have listeners here (for tests and diagnostics). */
  get watchedRuns(): number {
    return this.runs.size;
  }

  private notified(payload: string): void {
    const sep = payload.lastIndexOf(':');
    const w = this.runs.get(payload.slice(0, sep));
    if (!w) return;
    const seq = Number(payload.slice(sep + 1));
    if (Number.isFinite(seq) && seq <= w.cursor) return;
    w.behind = true;
    if (w.cursor !== UNKNOWN) this.kick();
  }

  /** Reads for every run that is behind, one query for all of them; one read at a time. */
  private kick(): void {
    if (this.closed) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        await this.readBehind().catch((err: unknown) => this.opts.onError?.(err));
      } while (this.again && !this.closed);
    })().finally(() => {
      this.reading = undefined;
    });
  }

  private async readBehind(): Promise<void> {
    for (;;) {
      const behind = [...this.runs.entries()].filter(([, w]) => w.behind && w.cursor !== UNKNOWN);
      if (behind.length === 0) return;
      for (const [, w] of behind) w.behind = false;
      const rows = await eventsAfterMany(
        this.db,
        behind.map(([runId, w]) => ({ runId, after: w.cursor })),
        READ_LIMIT,
      );
      const byRun = new Map<string, RunEventRow[]>();
      for (const e of rows) {
        let list = byRun.get(e.run_id);
        if (!list) byRun.set(e.run_id, (list = []));
        list.push(e);
      }
      for (const [runId, events] of byRun) {
        const w = this.runs.get(runId);
        if (!w) continue;
        const fresh = events.filter((e) => e.seq > w.cursor);
        if (fresh.length === 0) continue;
        w.cursor = fresh.at(-1)!.seq;
        if (events.length >= READ_LIMIT) w.behind = true;
        for (const l of w.listeners) {
          try {
            l(fresh);
          } catch (err) {
            this.opts.onError?.(err);
          }
        }
      }
    }
  }

  /** The safety net: compare each watched run's head with its cursor. */
  private async pollHeads(): Promise<void> {
    const ids = [...this.runs.entries()].filter(([, w]) => w.cursor !== UNKNOWN).map(([id]) => id);
    if (ids.length === 0 || this.closed) return;
    try {
      let moved = false;
      for (const h of await runHeads(this.db, ids)) {
        const w = this.runs.get(h.id);
        if (w && h.last_seq > w.cursor) {
          w.behind = true;
          moved = true;
        }
      }
      if (moved) this.kick();
    } catch (err) {
      this.opts.onError?.(err);
    }
  }
}
