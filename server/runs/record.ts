import type { Queryable } from '../db';
import { TERMINAL_STATUSES_SQL, isTerminal, type RunStatus } from './status';
import { appendBatches, type NewRun, type NewRunEvent, type RunRow } from './store';

/*
 * The writes other domains make to runs inside their own transaction (a task and its first run,
 * a job's status and its run's, a command's or process's events), like audit/record.ts for the
 * audit trail. Outside a transaction, use the ledger (./ledger.ts) or RunService.
 */

export type { NewRunEvent } from './store';

/** A new run and its first event (its status) in the caller's transaction. */
export async function insertRun(q: Queryable, r: NewRun): Promise<RunRow> {
  const status = r.status ?? 'pending';
  const rows = await q.query<RunRow>(
    `INSERT INTO runs (task_id, job_id, session_id, parent_run_id, created_by, status, metadata, kind, started_at, ended_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
             CASE WHEN $6 IN ('pending') THEN NULL ELSE now() END,
             CASE WHEN $6 IN (${TERMINAL_STATUSES_SQL}) THEN now() END)
     RETURNING *`,
    [r.taskId, r.jobId ?? null, r.sessionId ?? null, r.parentRunId ?? null, r.createdBy ?? null, status, r.metadata == null ? null : JSON.stringify(r.metadata), r.kind ?? 'task'],
  );
  const run = rows[0]!;
  const last = await appendEvents(q, run.id, [{ kind: 'status', data: { status } }]);
  return { ...run, last_seq: last.lastSeq };
}

/**
 * Appends events to a run's ledger in the caller's transaction; see `appendBatches`. Returns the
 * seq given to each input event (null for a dropped duplicate).
 */
export async function appendEvents(
  q: Queryable,
  runId: string,
  events: readonly NewRunEvent[],
  opts: { status?: RunStatus; error?: string | null } = {},
): Promise<{ lastSeq: number; seqs: Array<number | null> }> {
  const [r] = await appendBatches(q, [{ runId, events, ...opts }]);
  if (!r) throw new Error(`run ${runId} does not exist`);
  return r;
}

/**
 * The run of a dispatched job (the first run recorded with its job_id, not a sub-run), created
 * when the job has none (jobs queued before runs existed). Callers hold the job's row lock, so
 * two dispatchers never create it twice.
 */
export async function jobRunId(q: Queryable, jobId: string): Promise<string | null> {
  const found = await q.query<{ id: string }>('SELECT id FROM runs WHERE job_id = $1 AND parent_run_id IS NULL ORDER BY created_at, id LIMIT 1', [jobId]);
  if (found[0]) return found[0].id;
  const job = await q.query<{ task_id: string; session_id: string | null; created_by: string }>(
    'SELECT j.task_id, t.session_id, t.created_by FROM jobs j JOIN tasks t ON t.id = j.task_id WHERE j.id = $1',
    [jobId],
  );
  if (!job[0]) return null;
  const run = await insertRun(q, { taskId: job[0].task_id, jobId, sessionId: job[0].session_id, createdBy: job[0].created_by });
  return run.id;
}

/**
 * A job moved: its run gets the status event (after `before`, e.g. the job's output lines), in
 * the caller's transaction. A run that has already ended keeps its end.
 */
export async function recordJobStatus(q: Queryable, jobId: string, status: RunStatus, data: Record<string, unknown>, opts: { error?: string | null; before?: NewRunEvent[] } = {}): Promise<void> {
  // One query for the usual case (the run exists) on the dispatcher's critical path.
  const [found] = await q.query<{ id: string; status: RunStatus }>('SELECT id, status FROM runs WHERE job_id = $1 AND parent_run_id IS NULL ORDER BY created_at, id LIMIT 1', [jobId]);
  const run = found ?? (await jobRunId(q, jobId).then((id) => (id ? { id, status: 'pending' as RunStatus } : null)));
  if (!run || isTerminal(run.status)) return;
  await appendEvents(q, run.id, [...(opts.before ?? []), { kind: 'status', data: { ...data, status } }], { status, error: opts.error ?? null });
}

/** A job's output as log events, one per line (the job's result, when lines were not streamed). */
export function outputLines(jobId: string, result: { stdout?: unknown; stderr?: unknown } | null): NewRunEvent[] {
  const events: NewRunEvent[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    const text = result?.[stream];
    if (typeof text !== 'string' || text === '') continue;
    text
      .replace(/\r?\n$/, '')
      .split(/\r?\n/)
      .forEach((line, i) => events.push({ kind: 'log', stream, message: line, idempotencyKey: `log:${jobId}:result:${stream}:${i + 1}` }));
  }
  return events;
}

/**
 * The seq (the node's numbering) of the last streamed output line of a job already in its
 * run's ledger: a re-attached call asks the node for the lines after it.
 */
export async function lastStreamedLine(q: Queryable, runId: string, jobId: string): Promise<number> {
  const rows = await q.query<{ last: number | null }>(
    `SELECT max(substr(idempotency_key, length($2) + 1)::bigint) AS last FROM run_events
     WHERE run_id = $1 AND kind = 'log' AND idempotency_key LIKE $2 || '%' AND substr(idempotency_key, length($2) + 1) ~ '^[0-9]+$'`,
    [runId, `log:${jobId}:`],
  );
  return Number(rows[0]?.last ?? 0);
}

/** The idempotency key of a job's streamed output line `seq`. */
export const streamedLineKey = (jobId: string, seq: number) => `log:${jobId}:${seq}`;
