import type { Queryable } from '../db';
import { conflict } from '../http/problem';
import { grantsActionSql } from '../rbac/visibility';
import type { RunEventRow, RunRow } from './store';

/*
 * What other domains may read about runs, in their own queries or transactions. Everything else
 * about runs goes through RunService.
 */

/**
 * SQL true when `$1` (the caller) may see run `r`: the rule of its task (creator, or task.read in
 * the project); an agent step, which has no task, only its own user (like the session it is in).
 */
export const visibleRunSql = `((r.task_id IS NULL AND r.kind = 'agent_step' AND r.created_by = $1::uuid) OR EXISTS (SELECT 1 FROM tasks t WHERE t.id = r.task_id AND (t.created_by = $1::uuid OR ${grantsActionSql('$1::uuid', "'task.read'", 't.project_id')})))`;

/**
 * Read with a run where people look at it: its task's name (runs are listed by task, not by id)
 * and how many background processes run in its sandbox (run_processes, migration 0007).
 */
export const taskNameSql = `(SELECT t.name FROM tasks t WHERE t.id = r.task_id) AS task_name,
  (SELECT count(*)::int FROM run_processes p WHERE p.run_id = r.id AND p.status = 'running') AS processes_running`;

/**
 * The task of a run someone wants to change (status, logs, commands, processes, transcripts): an
 * agent step has none and is written by its agent only, so changing it is a conflict (409).
 */
export function taskOfWritableRun(run: RunRow): string {
  if (run.task_id === null) throw conflict('This run is a step of an agent turn; only the agent writes to it');
  return run.task_id;
}

export async function findVisibleRun(q: Queryable, userId: string, runId: string): Promise<RunRow | null> {
  const rows = await q.query<RunRow>(`SELECT r.*, ${taskNameSql} FROM runs r WHERE r.id = $2 AND ${visibleRunSql}`, [userId, runId]);
  return rows[0] ?? null;
}

/** A task's log lines over all its runs: runs in the order they were created, lines in seq order. */
export async function taskLogLines(q: Queryable, taskId: string): Promise<RunEventRow[]> {
  return q.query<RunEventRow>(
    `SELECT e.run_id, e.seq, e.kind, e.stream, e.message, e.data, e.created_at
     FROM runs r JOIN run_events e ON e.run_id = r.id
     WHERE r.task_id = $1 AND e.kind = 'log'
     ORDER BY r.created_at, r.id, e.seq`,
    [taskId],
  );
}
