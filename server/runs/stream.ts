import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RunEventHub } from './hub';
import type { Ledger } from './ledger';
import { isTerminal, type RunStatus } from './status';
import { runHeads, runsOfTask, type RunEventRow } from './store';
import type { Db } from '../db';

/** What a client is told to wait before reconnecting. */
const RETRY_MS = 3000;
const REPLAY_PAGE = 1000;

/** A server-sent events response on a hijacked reply: frames, heartbeat comments, one end. */
export class SseWriter {
  private readonly heartbeat: NodeJS.Timeout;
  private ended = false;
  /** Resolves when the client went away or we ended the stream. */
  readonly closed: Promise<void>;

  constructor(
    request: FastifyRequest,
    private readonly reply: FastifyReply,
    heartbeatMs: number,
  ) {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    });
    raw.socket?.setNoDelay(true);
    this.closed = new Promise((resolve) => raw.once('close', () => resolve()));
    void this.closed.then(() => this.stop());
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), heartbeatMs);
    this.write(`retry: ${RETRY_MS}\n\n`);
  }

  get open(): boolean {
    return !this.ended && !this.reply.raw.destroyed && !this.reply.raw.writableEnded;
  }

  send(event: string, data: unknown, id?: string | number): void {
    this.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  write(s: string): void {
    if (this.open) this.reply.raw.write(s);
  }

  end(): void {
    if (this.open) this.reply.raw.end();
    this.stop();
  }

  private stop(): void {
    this.ended = true;
    clearInterval(this.heartbeat);
  }
}

export const eventView = (e: RunEventRow) => ({
  seq: e.seq,
  kind: e.kind,
  stream: e.stream,
  message: e.message,
  data: e.data,
  created_at: e.created_at.toISOString(),
});

/**
 * The SSE frame of an event, serialised once however many streams send it: the hub hands the
 * same row objects to every listener of a run.
 */
const frames = new WeakMap<RunEventRow, string>();
function frameOf(e: RunEventRow): string {
  let frame = frames.get(e);
  if (frame === undefined) {
    frame = `id: ${e.seq}\nevent: run.event\ndata: ${JSON.stringify({ run_id: e.run_id, seq: e.seq, event: eventView(e) })}\n\n`;
    frames.set(e, frame);
  }
  return frame;
}

const terminalStatusEvent = (e: RunEventRow) =>
  e.kind === 'status' && typeof e.data === 'object' && e.data !== null && isTerminal((e.data as { status?: RunStatus }).status as RunStatus);

/**
 * Streams a run's ledger after `start`: every event exactly once, in seq order, then `done` once
 * the run has ended and everything was sent. Subscribes to the hub first, replays from the
 * ledger, then passes on live events, dropping those the replay already sent (seq <= last sent)
 * and reading from the ledger any it would otherwise skip.
 */
export async function streamRunEvents(o: { db: Db; ledger: Ledger; hub: RunEventHub; sse: SseWriter; runId: string; start: number }): Promise<void> {
  const { db, ledger, hub, sse, runId } = o;
  let sent = o.start;
  let replaying = true;
  const held: RunEventRow[] = [];
  let chain = Promise.resolve();

  const write = (e: RunEventRow) => {
    sse.write(frameOf(e));
    sent = e.seq;
  };
  /** Ends with `done` when the run has ended and nothing is left to send. */
  const finishIfDone = async () => {
    const [head] = await runHeads(db, [runId]);
    if (head && isTerminal(head.status) && head.last_seq <= sent) {
      sse.send('done', { run_id: runId, last_seq: sent, status: head.status });
      sse.end();
    }
  };
  const deliver = async (events: RunEventRow[]) => {
    let ended = false;
    for (const e of events) {
      if (!sse.open) return;
      if (e.seq <= sent) continue;
      if (e.seq > sent + 1) for (const missed of await ledger.read(runId, sent, e.seq - sent - 1)) write(missed);
      write(e);
      ended ||= terminalStatusEvent(e);
    }
    if (ended) await finishIfDone();
  };

  const unsubscribe = await hub.subscribe(runId, (events) => {
    if (replaying) held.push(...events);
    else chain = chain.then(() => deliver(events)).catch(() => sse.end());
  });
  try {
    for (;;) {
      const page = await ledger.read(runId, sent, REPLAY_PAGE);
      for (const e of page) if (sse.open) write(e);
      if (page.length < REPLAY_PAGE || !sse.open) break;
    }
    replaying = false;
    chain = chain.then(() => deliver(held.splice(0)));
    await chain;
    if (sse.open) await finishIfDone();
    await sse.closed;
  } finally {
    unsubscribe();
    sse.end();
  }
}

/**
 * A task's log lines over all its runs as server-sent events (`event: log`, data {run_id, seq,
 * stream, message, ts}), the ones so far and then live, until the task has ended and its runs
 * have nothing more: then `event: done` {task_id, status} and the stream closes. The hub wakes it
 * when one of the runs moves; a one-second poll notices new runs and the task's end.
 */
export async function streamTaskLogs(o: { db: Db; ledger: Ledger; hub: RunEventHub; sse: SseWriter; taskId: string; stream?: 'stdout' | 'stderr' }): Promise<void> {
  const { db, ledger, hub, sse, taskId } = o;
  const cursors = new Map<string, number>();
  const unsubscribes: Array<() => void> = [];
  let wake: (() => void) | undefined;
  try {
    while (sse.open) {
      const woken = new Promise<void>((resolve) => (wake = resolve));
      const runs = await runsOfTask(db, taskId);
      for (const r of runs) {
        if (cursors.has(r.id)) continue;
        cursors.set(r.id, 0);
        unsubscribes.push(await hub.subscribe(r.id, () => wake?.()));
      }
      let moved = false;
      for (const [runId, after] of cursors) {
        for (;;) {
          const page = await ledger.read(runId, cursors.get(runId)!, REPLAY_PAGE);
          for (const e of page) {
            if (e.kind === 'log' && (!o.stream || e.stream === o.stream)) {
              sse.send('log', { run_id: runId, seq: e.seq, stream: e.stream, message: e.message, ts: e.created_at.toISOString() });
            }
          }
          if (page.length > 0) cursors.set(runId, page.at(-1)!.seq);
          if (page.length < REPLAY_PAGE) break;
        }
        moved ||= cursors.get(runId)! > after;
      }
      if (!moved) {
        const [task] = await db.query<{ status: string; closed: boolean }>('SELECT status, closed FROM tasks WHERE id = $1', [taskId]);
        const heads = await runHeads(db, [...cursors.keys()]);
        const settled = heads.every((h) => isTerminal(h.status) && h.last_seq <= cursors.get(h.id)!);
        if (!task || (task.closed && settled)) {
          sse.send('done', { task_id: taskId, status: task?.status ?? null });
          sse.end();
          return;
        }
        await Promise.race([woken, sse.closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      }
    }
  } finally {
    for (const off of unsubscribes) off();
    sse.end();
  }
}
