import type { Queryable } from '../db';
import { Conditions } from '../db/sql';
import { recordJobStatus } from '../runs/record';
import { visibleTaskSql } from './queries';

export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'canceled' | 'superseded';
export type InputMode = 'prompt' | 'script' | 'commands';
export type JobKind = 'sandbox' | 'inference';

export interface TaskRow {
  id: string;
  name: string;
  created_by: string;
  project_id: string;
  input_mode: InputMode;
  prompt: string;
  status: TaskStatus;
  closed: boolean;
  summary: string | null;
  failure_reason: string | null;
  metadata: Record<string, unknown> | null;
  /** The session the task's runs belong to. */
  session_id: string | null;
  started_at: Date | null;
  ended_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface TaskJobRow {
  id: string;
  task_id: string;
  kind: JobKind;
  status: 'queued' | 'running' | 'completed' | 'failed' | 'canceled';
  node_id: string | null;
  attempt: number;
  result: Record<string, unknown> | null;
  failure_code: string | null;
  started_at: Date | null;
  ended_at: Date | null;
  created_at: Date;
}

/**
 * Inserts the task unless the creator already has one of that name; null then (ON CONFLICT DO
 * NOTHING leaves the transaction usable, so the caller can pick the next suffix and try again).
 */
export async function insertTaskNamed(
  q: Queryable,
  t: { name: string; createdBy: string; projectId: string; inputMode: InputMode; prompt: string; metadata: Record<string, unknown> | null; sessionId?: string | null },
): Promise<TaskRow | null> {
  const rows = await q.query<TaskRow>(
    `INSERT INTO tasks (name, created_by, project_id, input_mode, prompt, metadata, session_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (created_by, name) DO NOTHING RETURNING *`,
    [t.name, t.createdBy, t.projectId, t.inputMode, t.prompt, t.metadata === null ? null : JSON.stringify(t.metadata), t.sessionId ?? null],
  );
  return rows[0] ?? null;
}

/**
 * The creator's names that are `base` or `base-<n>`; the next free suffix is chosen from them.
 * `base` holds only [a-z0-9-], so it is safe inside the regular expression.
 */
export async function namesLike(q: Queryable, createdBy: string, base: string): Promise<string[]> {
  const rows = await q.query<{ name: string }>(`SELECT name FROM tasks WHERE created_by = $1 AND (name = $2 OR name ~ ('^' || $2 || '-[0-9]+$'))`, [createdBy, base]);
  return rows.map((r) => r.name);
}

export async function insertJob(q: Queryable, j: { taskId: string; kind: JobKind; payload: Record<string, unknown> }): Promise<string> {
  const rows = await q.query<{ id: string }>('INSERT INTO jobs (task_id, kind, payload) VALUES ($1, $2, $3) RETURNING id', [j.taskId, j.kind, JSON.stringify(j.payload)]);
  return rows[0]!.id;
}

export interface TaskFilter {
  visibleTo: string;
  status?: TaskStatus;
  projectId?: string;
  /** Start after this task (the cursor): newest first, ties broken by id. */
  afterId?: string;
  limit: number;
}

/** Visibility and filters in one statement; one extra row tells whether another page exists. */
export async function listVisibleTasks(q: Queryable, f: TaskFilter): Promise<{ tasks: TaskRow[]; more: boolean }> {
  const c = new Conditions([f.visibleTo], [visibleTaskSql]);
  if (f.status) c.add('t.status = ?', f.status);
  if (f.projectId) c.add('t.project_id = ?', f.projectId);
  // Compared in the database: a JavaScript Date would round created_at to milliseconds.
  if (f.afterId) c.add('(t.created_at, t.id) < (SELECT c.created_at, c.id FROM tasks c WHERE c.id = ?::uuid)', f.afterId);
  const limit = c.param(f.limit + 1);
  const rows = await q.query<TaskRow>(`SELECT t.* FROM tasks t ${c.where()} ORDER BY t.created_at DESC, t.id DESC LIMIT ${limit}`, c.params);
  return { tasks: rows.slice(0, f.limit), more: rows.length > f.limit };
}

export async function listTaskJobs(q: Queryable, taskId: string): Promise<TaskJobRow[]> {
  return q.query<TaskJobRow>(
    `SELECT id, task_id, kind, status, node_id, attempt, result, failure_code, started_at, ended_at, created_at
     FROM jobs WHERE task_id = $1 ORDER BY created_at, id`,
    [taskId],
  );
}

/** Locks the task row until the transaction ends (cancel against the dispatcher's updates). */
export async function lockTask(q: Queryable, id: string): Promise<TaskRow | null> {
  const rows = await q.query<TaskRow>('SELECT * FROM tasks WHERE id = $1 FOR UPDATE', [id]);
  return rows[0] ?? null;
}

export async function markTaskCanceled(q: Queryable, id: string): Promise<void> {
  await q.query(
    `UPDATE tasks SET status = 'canceled', closed = true, ended_at = COALESCE(ended_at, now()), updated_at = now()
     WHERE id = $1 AND NOT closed`,
    [id],
  );
}

/**
 * Cancels the task's queued jobs at once and returns its running ones: those end when their node
 * answers the stop (the worker's answer to the open jobs:run says `canceled`), so their output so
 * far is kept.
 */
export async function cancelQueuedJobs(q: Queryable, taskId: string): Promise<Array<{ id: string; node_id: string | null }>> {
  const jobs = await q.query<{ id: string; status: string; node_id: string | null }>(
    `SELECT id, status, node_id FROM jobs WHERE task_id = $1 AND status IN ('queued', 'running') ORDER BY created_at FOR UPDATE`,
    [taskId],
  );
  await q.query(`UPDATE jobs SET status = 'canceled', ended_at = now(), updated_at = now() WHERE task_id = $1 AND status = 'queued'`, [taskId]);
  for (const j of jobs) if (j.status === 'queued') await recordJobStatus(q, j.id, 'canceled', { reason: 'The task was canceled.' });
  return jobs.filter((j) => j.status === 'running').map((j) => ({ id: j.id, node_id: j.node_id }));
}
