import type { Queryable } from '../db';
import { dispatchableCondition } from '../nodes/queries';
import { outputLines, recordJobStatus, type NewRunEvent } from '../runs/record';

/*
 * The job queue's SQL. Every transaction here locks jobs before their task (claim, result, node
 * loss), and the task service's cancel does the same, so two of them never wait on each other in
 * a circle.
 */

/** How long a dispatcher's hold on a running job lasts without renewal. */
export const HOLD_SECONDS = 30;
/** A lease outlives the job's own timeout by this much before the job counts as lost. */
export const LEASE_GRACE_SECONDS = 60;

export interface QueuedJob {
  id: string;
  task_id: string;
  kind: 'sandbox' | 'inference';
  payload: Record<string, unknown>;
  attempt: number;
  max_attempts: number;
  /** Seconds since the job became eligible (created, or requeued after a node loss). */
  waited_seconds: number;
  task_closed: boolean;
  attempts_log: AttemptEntry[];
}

export interface RunningJob {
  id: string;
  task_id: string;
  kind: 'sandbox' | 'inference';
  payload: Record<string, unknown>;
  node_id: string | null;
  attempt: number;
  lease_id: string;
  lease_expires_at: Date;
  held_by: string | null;
}

export interface NodeLoad {
  id: string;
  node_slug: string;
  max_concurrency: number;
  running: number;
}

export interface AttemptEntry {
  attempt: number;
  node_id: string | null;
  outcome: string;
  at: string;
  detail?: string;
  /** The dispatcher (orchestrator process) that recorded it. */
  by?: string;
}

/**
 * Claims are serialised across orchestrator processes for the length of one short transaction,
 * so two of them cannot both count a node's last free slot. (SKIP LOCKED alone keeps them from
 * taking the same job, not from filling the same node twice.)
 */
export async function lockDispatch(tx: Queryable): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock(727010, 1)');
}

/** The oldest eligible queued jobs, locked; rows another transaction holds are skipped. */
export async function claimableJobs(tx: Queryable, limit: number): Promise<QueuedJob[]> {
  return tx.query<QueuedJob>(
    `SELECT j.id, j.task_id, j.kind, j.payload, j.attempt, j.max_attempts, j.attempts_log, t.closed AS task_closed,
            extract(epoch FROM now() - j.not_before)::float8 AS waited_seconds
     FROM jobs j JOIN tasks t ON t.id = j.task_id
     WHERE j.status = 'queued' AND j.not_before <= now()
     ORDER BY j.created_at, j.id
     FOR UPDATE OF j SKIP LOCKED
     LIMIT $1`,
    [limit],
  );
}

/**
 * The nodes that may take a sandbox job now (the node registry's dispatchability rule, see
 * docs/architecture.md#how-a-task-travels), with how many jobs each runs, least loaded first. Counted in SQL, in the claim's
 * transaction, so the count and the assignment agree.
 */
export async function dispatchableNodeLoads(q: Queryable): Promise<NodeLoad[]> {
  return q.query<NodeLoad>(
    `SELECT * FROM (
       SELECT n.id, n.node_slug, n.max_concurrency, n.last_seen_at,
              (SELECT count(*)::int FROM jobs r WHERE r.node_id = n.id AND r.status = 'running') AS running
       FROM nodes n
       WHERE ${dispatchableCondition('n')}
     ) d
     ORDER BY d.running::float8 / d.max_concurrency, d.running, d.last_seen_at DESC NULLS LAST, d.id`,
  );
}

/** Hands a queued job to a node: a new lease, held by this dispatcher; its task is running. */
export async function assignJob(tx: Queryable, a: { jobId: string; nodeId: string; timeoutSeconds: number; holder: string }): Promise<RunningJob> {
  const rows = await tx.query<RunningJob>(
    `UPDATE jobs SET status = 'running', node_id = $2, attempt = attempt + 1, lease_id = gen_random_uuid(),
            lease_expires_at = now() + make_interval(secs => $3), held_by = $4, held_until = now() + make_interval(secs => $5),
            started_at = now(), ended_at = NULL, failure_code = NULL, updated_at = now()
     WHERE id = $1
     RETURNING id, task_id, kind, payload, node_id, attempt, lease_id, lease_expires_at, held_by`,
    [a.jobId, a.nodeId, a.timeoutSeconds + LEASE_GRACE_SECONDS, a.holder, HOLD_SECONDS],
  );
  const job = rows[0]!;
  await recordJobStatus(tx, job.id, 'running', { attempt: job.attempt, node_id: job.node_id });
  await tx.query(`UPDATE tasks SET status = 'running', started_at = COALESCE(started_at, now()), updated_at = now() WHERE id = $1 AND status = 'queued'`, [job.task_id]);
  return job;
}

/**
 * A task this transaction closed as completed or failed, for what happens once it commits
 * (events out through connectors). Functions that may close a task push onto a given list.
 */
export interface ClosedTask {
  taskId: string;
  status: 'completed' | 'failed';
}

/** A job that never ran (queued) fails, and so does its task, with a reason a user can act on. */
export async function failQueuedJob(tx: Queryable, f: { jobId: string; taskId: string; code: string; reason: string }, closed?: ClosedTask[]): Promise<void> {
  const failed = await tx.query(`UPDATE jobs SET status = 'failed', failure_code = $2, ended_at = now(), updated_at = now() WHERE id = $1 AND status = 'queued' RETURNING id`, [f.jobId, f.code]);
  if (failed.length > 0) await recordJobStatus(tx, f.jobId, 'failed', { failure_code: f.code, reason: f.reason }, { error: f.reason });
  await failTask(tx, f.taskId, f.reason, closed);
}

export async function cancelQueuedJob(tx: Queryable, jobId: string): Promise<void> {
  const canceled = await tx.query(`UPDATE jobs SET status = 'canceled', ended_at = now(), updated_at = now() WHERE id = $1 AND status = 'queued' RETURNING id`, [jobId]);
  if (canceled.length > 0) await recordJobStatus(tx, jobId, 'canceled', { reason: 'The task was canceled.' });
}

export interface JobEnd {
  jobId: string;
  /** Only the attempt holding this lease may end the job: a requeued job's late answer is ignored. */
  leaseId: string;
  status: 'completed' | 'failed' | 'canceled';
  result: Record<string, unknown> | null;
  failureCode: string | null;
  /** For the task when the job did not complete. */
  reason: string | null;
  entry: AttemptEntry;
  /**
   * Output lines that were not streamed into the run's ledger while the job ran; they go in
   * before the run's final status event. Default: the result's stdout and stderr.
   */
  lines?: NewRunEvent[];
}

/** Records how a running job ended, and settles its task; false when the lease no longer matches. */
export async function endRunningJob(tx: Queryable, e: JobEnd, closed?: ClosedTask[]): Promise<boolean> {
  const rows = await tx.query<{ task_id: string }>(
    `UPDATE jobs SET status = $3, result = $4, failure_code = $5, ended_at = now(), updated_at = now(),
            held_by = NULL, held_until = NULL, attempts_log = attempts_log || $6::jsonb
     WHERE id = $1 AND lease_id = $2 AND status = 'running'
     RETURNING task_id`,
    [e.jobId, e.leaseId, e.status, e.result === null ? null : JSON.stringify(e.result), e.failureCode, JSON.stringify([e.entry])],
  );
  const row = rows[0];
  if (!row) return false;
  const result = e.result as { exit_code?: unknown } | null;
  await recordJobStatus(
    tx,
    e.jobId,
    e.status,
    { exit_code: typeof result?.exit_code === 'number' ? result.exit_code : null, failure_code: e.failureCode, reason: e.reason },
    { error: e.status === 'completed' ? null : e.reason, before: e.lines ?? outputLines(e.jobId, e.result) },
  );
  if (e.status === 'completed') await completeTaskIfDone(tx, row.task_id, closed);
  else if (e.status === 'failed') await failTask(tx, row.task_id, e.reason ?? 'the job failed', closed);
  else await tx.query(`UPDATE tasks SET status = 'canceled', closed = true, failure_reason = COALESCE(failure_reason, $2), ended_at = now(), updated_at = now() WHERE id = $1 AND NOT closed`, [row.task_id, e.reason]);
  return true;
}

/** A task completes when every one of its jobs has. */
async function completeTaskIfDone(tx: Queryable, taskId: string, closed?: ClosedTask[]): Promise<void> {
  const done = await tx.query(
    `UPDATE tasks SET status = 'completed', closed = true, ended_at = now(), updated_at = now()
     WHERE id = $1 AND NOT closed AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.task_id = $1 AND j.status <> 'completed') RETURNING id`,
    [taskId],
  );
  if (done.length > 0) closed?.push({ taskId, status: 'completed' });
}

/** One failed job fails its task (one job per task today); a closed task (canceled) stays as it is. */
async function failTask(tx: Queryable, taskId: string, reason: string, closed?: ClosedTask[]): Promise<void> {
  const failed = await tx.query(
    `UPDATE tasks SET status = 'failed', closed = true, failure_reason = $2, ended_at = now(), updated_at = now() WHERE id = $1 AND NOT closed RETURNING id`,
    [taskId, reason],
  );
  if (failed.length > 0) closed?.push({ taskId, status: 'failed' });
}

export interface LostJob {
  id: string;
  task_id: string;
  node_id: string | null;
  node_slug: string | null;
  attempt: number;
  max_attempts: number;
  lease_id: string;
  /** The node went stale or was deleted, rather than the lease simply running out. */
  node_lost: boolean;
  task_closed: boolean;
}

/**
 * Running jobs whose node stopped sending heartbeats (status `stale`, set by the node registry's
 * liveness sweep), whose node is gone, or whose lease ran out; locked, skipping rows in use.
 */
export async function lostJobs(tx: Queryable, limit: number): Promise<LostJob[]> {
  return tx.query<LostJob>(
    `SELECT j.id, j.task_id, j.node_id, n.node_slug, j.attempt, j.max_attempts, j.lease_id, t.closed AS task_closed,
            (n.id IS NULL OR n.status = 'stale') AS node_lost
     FROM jobs j JOIN tasks t ON t.id = j.task_id LEFT JOIN nodes n ON n.id = j.node_id
     WHERE j.status = 'running' AND (n.id IS NULL OR n.status = 'stale' OR j.lease_expires_at < now())
     ORDER BY j.created_at, j.id
     FOR UPDATE OF j SKIP LOCKED
     LIMIT $1`,
    [limit],
  );
}

/** The running job under this lease, locked; null when the lease has moved on. */
export async function lockLeasedJob(tx: Queryable, jobId: string, leaseId: string): Promise<LostJob | null> {
  const rows = await tx.query<LostJob>(
    `SELECT j.id, j.task_id, j.node_id, n.node_slug, j.attempt, j.max_attempts, j.lease_id, t.closed AS task_closed, true AS node_lost
     FROM jobs j JOIN tasks t ON t.id = j.task_id LEFT JOIN nodes n ON n.id = j.node_id
     WHERE j.id = $1 AND j.lease_id = $2 AND j.status = 'running'
     FOR UPDATE OF j`,
    [jobId, leaseId],
  );
  return rows[0] ?? null;
}

/** Back in the queue for another node: a new lease comes with the next assignment. */
export async function requeueJob(tx: Queryable, jobId: string, entry: AttemptEntry): Promise<void> {
  const requeued = await tx.query(
    `UPDATE jobs SET status = 'queued', node_id = NULL, lease_id = NULL, lease_expires_at = NULL, held_by = NULL, held_until = NULL,
            not_before = now(), updated_at = now(), attempts_log = attempts_log || $2::jsonb
     WHERE id = $1 AND status = 'running' RETURNING id`,
    [jobId, JSON.stringify([entry])],
  );
  // Back to pending in the same run: a retry of the same job row is the same run.
  if (requeued.length > 0) await recordJobStatus(tx, jobId, 'pending', { requeued: true, attempt: entry.attempt, node_id: entry.node_id, outcome: entry.outcome });
}

/** Ends a lost job for good: failed (retries used up), or canceled when its task was. */
export async function endLostJob(
  tx: Queryable,
  l: { jobId: string; taskId: string; status: 'failed' | 'canceled'; code: string | null; reason: string; entry: AttemptEntry },
  closed?: ClosedTask[],
): Promise<void> {
  const ended = await tx.query(
    `UPDATE jobs SET status = $2, failure_code = $3, ended_at = now(), updated_at = now(), held_by = NULL, held_until = NULL,
            attempts_log = attempts_log || $4::jsonb
     WHERE id = $1 AND status = 'running' RETURNING id`,
    [l.jobId, l.status, l.code, JSON.stringify([l.entry])],
  );
  if (ended.length > 0) await recordJobStatus(tx, l.jobId, l.status, { failure_code: l.code, reason: l.reason }, { error: l.status === 'failed' ? l.reason : null });
  if (l.status === 'failed') await failTask(tx, l.taskId, l.reason, closed);
}

/**
 * Running jobs whose dispatcher stopped renewing its hold (it died or restarted): this
 * dispatcher takes them over and calls their node again with the same job_id.
 */
export async function takeOrphanedJobs(q: Queryable, holder: string, limit: number): Promise<RunningJob[]> {
  return q.query<RunningJob>(
    `UPDATE jobs j SET held_by = $1, held_until = now() + make_interval(secs => $3), updated_at = now()
     FROM (SELECT id FROM jobs WHERE status = 'running' AND (held_until IS NULL OR held_until < now())
           ORDER BY created_at, id FOR UPDATE SKIP LOCKED LIMIT $2) s
     WHERE j.id = s.id AND j.status = 'running'
     RETURNING j.id, j.task_id, j.kind, j.payload, j.node_id, j.attempt, j.lease_id, j.lease_expires_at, j.held_by`,
    [holder, limit, HOLD_SECONDS],
  );
}

/** Keeps this dispatcher's holds alive while it waits on the nodes. */
export async function renewHolds(q: Queryable, holder: string, jobIds: string[]): Promise<void> {
  if (jobIds.length === 0) return;
  await q.query(`UPDATE jobs SET held_until = now() + make_interval(secs => $3) WHERE held_by = $1 AND status = 'running' AND id = ANY($2::uuid[])`, [holder, jobIds, HOLD_SECONDS]);
}

/** On a clean stop: another dispatcher may take these over at once instead of in 30 s. */
export async function releaseHolds(q: Queryable, holder: string): Promise<void> {
  await q.query(`UPDATE jobs SET held_until = now() - interval '1 second' WHERE held_by = $1 AND status = 'running'`, [holder]);
}

export interface InFlightState {
  id: string;
  status: string;
  lease_id: string | null;
  held_by: string | null;
  task_closed: boolean;
}

/** Where the jobs this dispatcher waits on stand now (canceled, requeued, taken over?). */
export async function inFlightStates(q: Queryable, jobIds: string[]): Promise<InFlightState[]> {
  if (jobIds.length === 0) return [];
  return q.query<InFlightState>(
    `SELECT j.id, j.status, j.lease_id, j.held_by, t.closed AS task_closed FROM jobs j JOIN tasks t ON t.id = j.task_id WHERE j.id = ANY($1::uuid[])`,
    [jobIds],
  );
}

/** Is the lease still this attempt's, unexpired, on a node that is not stale? */
export async function leaseAlive(q: Queryable, jobId: string, leaseId: string): Promise<boolean> {
  const rows = await q.query<{ ok: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM jobs j JOIN nodes n ON n.id = j.node_id
       WHERE j.id = $1 AND j.lease_id = $2 AND j.status = 'running' AND j.lease_expires_at > now() AND n.status = 'active'
     ) AS ok`,
    [jobId, leaseId],
  );
  return rows[0]?.ok === true;
}

/** The text of a task (a prompt task's question). */
export async function taskPrompt(q: Queryable, taskId: string): Promise<string | null> {
  const rows = await q.query<{ prompt: string }>('SELECT prompt FROM tasks WHERE id = $1', [taskId]);
  return rows[0]?.prompt ?? null;
}
