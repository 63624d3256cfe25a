import type { Queryable } from '../db';
import { TERMINAL_STATUSES_SQL } from '../runs/status';

export type CommandType = 'pause' | 'resume' | 'cancel' | 'emit_event';
export const COMMAND_TYPES: readonly CommandType[] = ['pause', 'resume', 'cancel', 'emit_event'];
export type CommandState = 'accepted' | 'applied' | 'rejected';

/** Announces accepted commands to every gateway's runner (the payload is the seq, informational). */
export const COMMANDS_CHANNEL = 'run_commands';

export interface CommandRow {
  seq: number;
  command_id: string;
  subject_id: string;
  run_id: string;
  type: CommandType;
  payload: Record<string, unknown> | null;
  state: CommandState;
  reason: string | null;
  received_at: Date;
  applied_at: Date | null;
}

const COLUMNS = 'seq, command_id, subject_id, run_id, type, payload, state, reason, received_at, applied_at';

/**
 * Accepts a command unless the caller already sent one with this command_id. The unique
 * constraint decides between concurrent repeats: the loser inserts nothing and reads the winner's.
 */
export async function acceptCommand(
  q: Queryable,
  c: { commandId: string; subjectId: string; runId: string; type: CommandType; payload: Record<string, unknown> | null },
): Promise<{ command: CommandRow; duplicate: boolean }> {
  const inserted = await q.query<CommandRow>(
    `INSERT INTO commands (command_id, subject_id, run_id, type, payload) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (subject_id, command_id) DO NOTHING RETURNING ${COLUMNS}`,
    [c.commandId, c.subjectId, c.runId, c.type, c.payload === null ? null : JSON.stringify(c.payload)],
  );
  if (inserted[0]) return { command: norm(inserted[0]), duplicate: false };
  const first = await findOwnCommand(q, c.subjectId, c.commandId);
  if (!first) throw new Error(`command ${c.commandId} conflicted but cannot be read`);
  return { command: first, duplicate: true };
}

export async function findOwnCommand(q: Queryable, subjectId: string, commandId: string): Promise<CommandRow | null> {
  const rows = await q.query<CommandRow>(`SELECT ${COLUMNS} FROM commands WHERE subject_id = $1 AND command_id = $2`, [subjectId, commandId]);
  return rows[0] ? norm(rows[0]) : null;
}

/** A claimed command with what applying it needs to know of its sender. */
export interface ClaimedCommand extends CommandRow {
  subject_handle: string | null;
}

/**
 * Claims accepted commands for `holder` until the lease runs out, oldest first, taking only the
 * oldest still-accepted command of each run: a run's commands then apply strictly in seq order
 * even with several runners, because the next one becomes claimable only once the one before it
 * was applied or rejected. Rows another runner is claiming right now are skipped, not waited for.
 */
export async function claimCommands(q: Queryable, holder: string, leaseSeconds: number, limit: number): Promise<ClaimedCommand[]> {
  const rows = await q.query<ClaimedCommand>(
    `WITH next AS (
       SELECT c.seq FROM commands c
       WHERE c.state = 'accepted' AND (c.lease_until IS NULL OR c.lease_until < now())
         AND NOT EXISTS (SELECT 1 FROM commands p WHERE p.run_id = c.run_id AND p.state = 'accepted' AND p.seq < c.seq)
       ORDER BY c.seq LIMIT $3
       FOR UPDATE SKIP LOCKED
     )
     UPDATE commands c SET lease_holder = $1, lease_until = now() + $2::int * interval '1 second'
     FROM next WHERE c.seq = next.seq
     RETURNING c.seq, c.command_id, c.subject_id, c.run_id, c.type, c.payload, c.state, c.reason, c.received_at, c.applied_at,
               (SELECT u.handle FROM users u WHERE u.id = c.subject_id) AS subject_handle`,
    [holder, leaseSeconds, limit],
  );
  return rows.map((r) => norm(r)).sort((a, b) => a.seq - b.seq);
}

/** The outcome, written only while the claim is still `holder`'s; false when it was lost. */
export async function settleCommand(q: Queryable, seq: number, holder: string, state: 'applied' | 'rejected', reason: string | null): Promise<boolean> {
  const rows = await q.query(
    `UPDATE commands SET state = $3, reason = $4, applied_at = now(), lease_holder = NULL, lease_until = NULL
     WHERE seq = $1 AND state = 'accepted' AND lease_holder = $2 RETURNING 1`,
    [seq, holder, state, reason],
  );
  return rows.length > 0;
}

/** Gives back claims of a runner that stops, so another applies them at once. */
export async function releaseCommandClaims(q: Queryable, holder: string): Promise<void> {
  await q.query(`UPDATE commands SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = $1 AND state = 'accepted'`, [holder]);
}

/** The run and its descendants (through parent_run_id) that have not ended, the run first. */
export async function openRunTree(q: Queryable, runId: string): Promise<Array<{ id: string; task_id: string; job_id: string | null; parent_run_id: string | null }>> {
  return q.query(
    `WITH RECURSIVE tree AS (
       SELECT id, task_id, job_id, parent_run_id, status, 0 AS depth FROM runs WHERE id = $1
       UNION ALL
       SELECT r.id, r.task_id, r.job_id, r.parent_run_id, r.status, t.depth + 1 FROM runs r JOIN tree t ON r.parent_run_id = t.id
     )
     SELECT id, task_id, job_id, parent_run_id FROM tree WHERE status NOT IN (${TERMINAL_STATUSES_SQL}) ORDER BY depth, id`,
    [runId],
  );
}

/** Where a run's job is: running on a node (with its kind), or not running anywhere. */
export async function runningJobOf(q: Queryable, jobId: string): Promise<{ id: string; task_id: string; node_id: string; kind: string } | null> {
  const rows = await q.query<{ id: string; task_id: string; node_id: string; kind: string }>(
    `SELECT id, task_id, node_id, kind FROM jobs WHERE id = $1 AND status = 'running' AND node_id IS NOT NULL`,
    [jobId],
  );
  return rows[0] ?? null;
}

export async function setRunPaused(q: Queryable, runId: string, paused: boolean, reason: string | null): Promise<void> {
  await q.query('UPDATE runs SET paused = $2, pause_reason = $3, updated_at = now() WHERE id = $1', [runId, paused, paused ? reason : null]);
}

function norm<T extends CommandRow>(r: T): T {
  return { ...r, seq: Number(r.seq) };
}
