import type { Queryable } from '../db';

export type ProcessStatus = 'running' | 'exited' | 'terminated' | 'failed';

export interface ProcessRow {
  id: string;
  run_id: string;
  task_id: string;
  job_id: string;
  node_id: string;
  command: string[];
  env_names: string[];
  status: ProcessStatus;
  exit_code: number | null;
  reason: string | null;
  started_by: string | null;
  started_at: Date;
  ended_at: Date | null;
  stdout: string | null;
  stderr: string | null;
  truncated: boolean;
}

/** The sandbox a run's processes go into: its job, while that job runs on a node. */
export interface RunSandbox {
  run_id: string;
  task_id: string;
  job_id: string;
  node_id: string;
}

export async function runningSandbox(q: Queryable, runId: string): Promise<RunSandbox | null> {
  const rows = await q.query<RunSandbox>(
    `SELECT r.id AS run_id, r.task_id, j.id AS job_id, j.node_id
       FROM runs r JOIN jobs j ON j.id = r.job_id
      WHERE r.id = $1 AND j.kind = 'sandbox' AND j.status = 'running' AND j.node_id IS NOT NULL`,
    [runId],
  );
  return rows[0] ?? null;
}

/** Whether the job still runs, as far as the orchestrator knows (a process cannot outlive it). */
export async function jobRunning(q: Queryable, jobId: string): Promise<boolean> {
  return (await q.query('SELECT 1 FROM jobs WHERE id = $1 AND status = $2', [jobId, 'running'])).length > 0;
}

export async function insertProcess(
  q: Queryable,
  p: { id: string; sandbox: RunSandbox; command: string[]; envNames: string[]; startedBy: string },
): Promise<ProcessRow> {
  const rows = await q.query<ProcessRow>(
    `INSERT INTO run_processes (id, run_id, task_id, job_id, node_id, command, env_names, started_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
    [p.id, p.sandbox.run_id, p.sandbox.task_id, p.sandbox.job_id, p.sandbox.node_id, JSON.stringify(p.command), JSON.stringify(p.envNames), p.startedBy],
  );
  return rows[0]!;
}

/** A start the node refused before anything ran: no trace is left of it. */
export async function deleteUnstartedProcess(q: Queryable, id: string): Promise<void> {
  await q.query("DELETE FROM run_processes WHERE id = $1 AND status = 'running'", [id]);
}

export async function findProcess(q: Queryable, runId: string, id: string): Promise<ProcessRow | null> {
  const rows = await q.query<ProcessRow>('SELECT * FROM run_processes WHERE run_id = $1 AND id = $2', [runId, id]);
  return rows[0] ?? null;
}

export async function processesOfRun(q: Queryable, runId: string): Promise<ProcessRow[]> {
  return q.query<ProcessRow>('SELECT * FROM run_processes WHERE run_id = $1 ORDER BY started_at, id', [runId]);
}

export interface ProcessEnd {
  status: Exclude<ProcessStatus, 'running'>;
  exitCode: number | null;
  reason: string | null;
  endedAt: Date;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

/**
 * Records a process's end, once: only a process still `running` changes, so of several
 * gateways (or a watcher and a reader) that learn of the same end, exactly one gets the row.
 */
export async function endProcess(q: Queryable, id: string, e: ProcessEnd): Promise<ProcessRow | null> {
  const rows = await q.query<ProcessRow>(
    `UPDATE run_processes SET status = $2, exit_code = $3, reason = $4, ended_at = $5, stdout = $6, stderr = $7, truncated = $8
      WHERE id = $1 AND status = 'running' RETURNING *`,
    [id, e.status, e.exitCode, e.reason, e.endedAt, e.stdout, e.stderr, e.truncated],
  );
  return rows[0] ?? null;
}
