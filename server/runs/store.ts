import type { Queryable } from '../db';
import { Conditions } from '../db/sql';
import { TERMINAL_STATUSES_SQL, type RunStatus } from './status';
import { taskNameSql, visibleRunSql } from './queries';

export type EventKind = 'status' | 'log' | 'event' | 'command' | 'process' | 'transcript';
export type LogStream = 'stdout' | 'stderr';

/** The channel every append notifies on; the payload is `<run_id>:<last_seq>`. */
export const RUN_EVENTS_CHANNEL = 'run_events';

/** `task`: an execution of a task; `agent_step`: one step of an agent turn (no task, its user's only). */
export type RunKind = 'task' | 'agent_step';

export interface RunRow {
  id: string;
  kind: RunKind;
  /** Null for an agent step (kind `agent_step`). */
  task_id: string | null;
  job_id: string | null;
  session_id: string | null;
  parent_run_id: string | null;
  created_by: string | null;
  status: RunStatus;
  paused: boolean;
  pause_reason: string | null;
  last_seq: number;
  error: string | null;
  /** Absent in lists: it may be large (up to MAX_METADATA_BYTES), and lists hold many runs. */
  metadata?: Record<string, unknown> | null;
  started_at: Date | null;
  ended_at: Date | null;
  created_at: Date;
  updated_at: Date;
  /** Read with the run where people look at it (get, lists); absent on rows just written. */
  task_name?: string | null;
  processes_running?: number;
}

export interface RunEventRow {
  run_id: string;
  seq: number;
  kind: EventKind;
  stream: LogStream | null;
  message: string | null;
  data: unknown;
  created_at: Date;
}

/** An event before the ledger gives it a seq. */
export interface NewRunEvent {
  kind: EventKind;
  stream?: LogStream | null;
  message?: string | null;
  data?: unknown;
  /** A second event with the same key on the same run is dropped (at-least-once writers). */
  idempotencyKey?: string | null;
}

export interface NewRun {
  /** Null only for an agent step, which then needs sessionId and createdBy (migration 0018). */
  taskId: string | null;
  kind?: RunKind;
  jobId?: string | null;
  sessionId?: string | null;
  parentRunId?: string | null;
  createdBy?: string | null;
  status?: RunStatus;
  metadata?: Record<string, unknown> | null;
}

/** Events for one run, with the status they set (if any), for `appendBatches`. */
export interface RunAppend {
  runId: string;
  events: readonly NewRunEvent[];
  status?: RunStatus;
  error?: string | null;
}

/**
 * Appends events to several runs' ledgers in the caller's transaction, in two statements
 * whatever the number of runs: first the runs' rows are locked (in id order, so two writers never
 * wait on each other in a circle), which serialises writers of one run across processes; then one
 * statement, whose snapshot therefore sees every event committed before, drops events whose
 * idempotency key the run already has (or that repeat one within the batch), numbers the rest
 * densely after each run's `last_seq`, inserts them, moves `last_seq` (and `status` with
 * started_at/ended_at/error when given) and queues a NOTIFY per run, which PostgreSQL delivers
 * only at commit. No insert can conflict, so the sequence never gets a hole.
 * Answers per input batch, in order; null for a run that does not exist (nothing of it is written).
 */
export async function appendBatches(q: Queryable, batches: readonly RunAppend[]): Promise<Array<{ lastSeq: number; seqs: Array<number | null> } | null>> {
  const runIds = [...new Set(batches.map((b) => b.runId))].sort();
  const heads = new Map(
    (await q.query<{ id: string; last_seq: number }>('SELECT id, last_seq FROM runs WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE', [runIds])).map((r) => [r.id, Number(r.last_seq)]),
  );
  const input: Array<Record<string, unknown>> = [];
  const statuses = new Map<string, { run_id: string; status: RunStatus; error: string | null }>();
  const origin: Array<{ batch: number; index: number }> = [];
  batches.forEach((b, batch) => {
    if (!heads.has(b.runId)) return;
    if (b.status) statuses.set(b.runId, { run_id: b.runId, status: b.status, error: b.error ?? null });
    b.events.forEach((e, index) => {
      input.push({
        ord: origin.length,
        run_id: b.runId,
        kind: e.kind,
        stream: e.stream ?? null,
        message: e.message ?? null,
        data: e.data === undefined ? null : e.data,
        idempotency_key: e.idempotencyKey ?? null,
      });
      origin.push({ batch, index });
    });
  });
  const rows =
    input.length === 0
      ? []
      : await q.query<{ ord: number; seq: number }>(
          `WITH input AS (
             SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(ord int, run_id uuid, kind text, stream text, message text, data jsonb, idempotency_key text)
           ), statuses AS (
             SELECT * FROM jsonb_to_recordset($2::jsonb) AS s(run_id uuid, status text, error text)
           ), first_of_key AS (
             SELECT DISTINCT ON (run_id, COALESCE(idempotency_key, 'ord:' || ord)) * FROM input
             ORDER BY run_id, COALESCE(idempotency_key, 'ord:' || ord), ord
           ), fresh AS (
             SELECT f.*, row_number() OVER (PARTITION BY f.run_id ORDER BY f.ord) AS n FROM first_of_key f
             WHERE f.idempotency_key IS NULL
                OR NOT EXISTS (SELECT 1 FROM run_events e WHERE e.run_id = f.run_id AND e.idempotency_key = f.idempotency_key)
           ), numbered AS (
             SELECT f.*, r.last_seq + f.n AS seq FROM fresh f JOIN runs r ON r.id = f.run_id
           ), inserted AS (
             INSERT INTO run_events (run_id, seq, kind, stream, message, data, idempotency_key)
             SELECT run_id, seq, kind, stream, message, data, idempotency_key FROM numbered ORDER BY run_id, seq
             RETURNING 1
           ), heads AS (
             SELECT h.run_id, h.last_seq, s.status, s.error
             FROM (SELECT run_id, max(seq) AS last_seq FROM numbered GROUP BY run_id) h LEFT JOIN statuses s ON s.run_id = h.run_id
           ), moved AS (
             UPDATE runs r SET last_seq = h.last_seq, updated_at = now(),
                    status = COALESCE(h.status, r.status),
                    started_at = CASE WHEN h.status IS NOT NULL AND h.status <> 'pending' THEN COALESCE(r.started_at, now()) ELSE r.started_at END,
                    ended_at = CASE WHEN h.status IN (${TERMINAL_STATUSES_SQL}) THEN COALESCE(r.ended_at, now()) WHEN h.status IS NOT NULL THEN NULL ELSE r.ended_at END,
                    error = CASE WHEN h.status IS NOT NULL THEN h.error ELSE r.error END
             FROM heads h WHERE r.id = h.run_id
             RETURNING r.id, r.last_seq
           ), told AS (
             SELECT pg_notify('${RUN_EVENTS_CHANNEL}', id::text || ':' || last_seq) FROM moved
           )
           SELECT n.ord, n.seq FROM numbered n, (SELECT count(*) FROM inserted) i, (SELECT count(*) FROM told) t`,
          [JSON.stringify(input), JSON.stringify([...statuses.values()])],
        );
  const answers = batches.map((b) => (heads.has(b.runId) ? { lastSeq: heads.get(b.runId)!, seqs: b.events.map((): number | null => null) } : null));
  for (const r of rows) {
    const o = origin[r.ord]!;
    answers[o.batch]!.seqs[o.index] = Number(r.seq);
  }
  // Every batch of a run answers with the run's new head.
  const last = new Map<string, number>();
  for (const r of rows) {
    const runId = batches[origin[r.ord]!.batch]!.runId;
    last.set(runId, Math.max(last.get(runId) ?? 0, Number(r.seq)));
  }
  batches.forEach((b, i) => {
    const head = last.get(b.runId);
    if (answers[i] && head !== undefined) answers[i].lastSeq = head;
  });
  return answers;
}

/** Events after `after`, oldest first. */
export async function eventsAfter(q: Queryable, runId: string, after: number, limit: number): Promise<RunEventRow[]> {
  return q.query<RunEventRow>(
    'SELECT run_id, seq, kind, stream, message, data, created_at FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
    [runId, after, limit],
  );
}

/** Events after `after` of several runs at once, oldest first per run (the hub's one read per wake-up). */
export async function eventsAfterMany(q: Queryable, cursors: ReadonlyArray<{ runId: string; after: number }>, limitPerRun: number): Promise<RunEventRow[]> {
  if (cursors.length === 0) return [];
  return q.query<RunEventRow>(
    `SELECT e.run_id, e.seq, e.kind, e.stream, e.message, e.data, e.created_at
     FROM unnest($1::uuid[], $2::bigint[]) AS c(run_id, after)
     CROSS JOIN LATERAL (
       SELECT * FROM run_events r WHERE r.run_id = c.run_id AND r.seq > c.after ORDER BY r.seq LIMIT $3
     ) e
     ORDER BY e.run_id, e.seq`,
    [cursors.map((c) => c.runId), cursors.map((c) => c.after), limitPerRun],
  );
}

export interface LogFilter {
  since?: Date;
  until?: Date;
  stream?: LogStream;
  /** Continue after this seq (the cursor). */
  afterSeq?: number;
  limit: number;
}

/** A run's log lines in a time range, in seq order; one extra row tells whether there is more. */
export async function logLines(q: Queryable, runIds: readonly string[], f: LogFilter): Promise<{ entries: RunEventRow[]; more: boolean }> {
  const c = new Conditions([runIds], ['run_id = ANY($1::uuid[])', "kind = 'log'"]);
  if (f.since) c.add('created_at >= ?', f.since);
  if (f.until) c.add('created_at < ?', f.until);
  if (f.stream) c.add('stream = ?', f.stream);
  if (f.afterSeq !== undefined) c.add('seq > ?', f.afterSeq);
  const limit = c.param(f.limit + 1);
  const rows = await q.query<RunEventRow>(
    `SELECT run_id, seq, kind, stream, message, data, created_at FROM run_events ${c.where()} ORDER BY created_at, run_id, seq LIMIT ${limit}`,
    c.params,
  );
  return { entries: rows.slice(0, f.limit), more: rows.length > f.limit };
}


export async function findRun(q: Queryable, runId: string): Promise<RunRow | null> {
  const rows = await q.query<RunRow>('SELECT * FROM runs WHERE id = $1', [runId]);
  return rows[0] ?? null;
}

export async function runHeads(q: Queryable, runIds: readonly string[]): Promise<Array<{ id: string; last_seq: number; status: RunStatus }>> {
  if (runIds.length === 0) return [];
  return q.query('SELECT id, last_seq, status FROM runs WHERE id = ANY($1::uuid[])', [runIds]);
}

export interface RunFilter {
  visibleTo: string;
  taskId?: string;
  jobId?: string;
  sessionId?: string;
  parentRunId?: string;
  status?: RunStatus;
  since?: Date;
  until?: Date;
  afterId?: string;
  limit: number;
}

/** Every column of a run but `metadata`: see RunRow. */
const LISTED_COLUMNS = ['id', 'kind', 'task_id', 'job_id', 'session_id', 'parent_run_id', 'created_by', 'status', 'paused', 'pause_reason', 'last_seq', 'error', 'started_at', 'ended_at', 'created_at', 'updated_at']
  .map((c) => `r.${c}`)
  .join(', ');

/** Visible runs, newest first, with the filters; one extra row tells whether another page exists. */
export async function listVisibleRuns(q: Queryable, f: RunFilter): Promise<{ runs: RunRow[]; more: boolean }> {
  const c = new Conditions([f.visibleTo], [visibleRunSql]);
  if (f.taskId) c.add('r.task_id = ?', f.taskId);
  if (f.jobId) c.add('r.job_id = ?', f.jobId);
  if (f.sessionId) c.add('r.session_id = ?', f.sessionId);
  if (f.parentRunId) c.add('r.parent_run_id = ?', f.parentRunId);
  if (f.status) c.add('r.status = ?', f.status);
  if (f.since) c.add('r.created_at >= ?', f.since);
  if (f.until) c.add('r.created_at < ?', f.until);
  // Compared in the database: a JavaScript Date would round created_at to milliseconds.
  if (f.afterId) c.add('(r.created_at, r.id) < (SELECT a.created_at, a.id FROM runs a WHERE a.id = ?::uuid)', f.afterId);
  const limit = c.param(f.limit + 1);
  const rows = await q.query<RunRow>(`SELECT ${LISTED_COLUMNS}, ${taskNameSql} FROM runs r ${c.where()} ORDER BY r.created_at DESC, r.id DESC LIMIT ${limit}`, c.params);
  return { runs: rows.slice(0, f.limit), more: rows.length > f.limit };
}

/** All runs of a task, oldest first (task logs read them in this order). */
export async function runsOfTask(q: Queryable, taskId: string): Promise<RunRow[]> {
  return q.query<RunRow>('SELECT * FROM runs WHERE task_id = $1 ORDER BY created_at, id', [taskId]);
}

export async function runOfJob(q: Queryable, jobId: string): Promise<RunRow | null> {
  const rows = await q.query<RunRow>('SELECT * FROM runs WHERE job_id = $1 ORDER BY created_at LIMIT 1', [jobId]);
  return rows[0] ?? null;
}

export async function updateRunMetadata(q: Queryable, runId: string, metadata: Record<string, unknown>): Promise<void> {
  await q.query('UPDATE runs SET metadata = $2, updated_at = now() WHERE id = $1', [runId, JSON.stringify(metadata)]);
}

