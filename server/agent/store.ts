import type { Queryable } from '../db';
import type { ToolOutcome } from '../mcp/service';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface ApprovalRow {
  id: string;
  user_id: string;
  thread_id: string;
  session_id: string | null;
  project_id: string | null;
  tool_name: string;
  args: Record<string, unknown>;
  status: ApprovalStatus;
  outcome: ToolOutcome | null;
  created_at: Date;
  decided_at: Date | null;
  decided_by: string | null;
  reported_at: Date | null;
}

export async function insertApproval(q: Queryable, a: { userId: string; threadId: string; sessionId: string; projectId: string | null; toolName: string; args: Record<string, unknown> }): Promise<ApprovalRow> {
  const rows = await q.query<ApprovalRow>(
    'INSERT INTO agent_approvals (user_id, thread_id, session_id, project_id, tool_name, args) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
    [a.userId, a.threadId, a.sessionId, a.projectId, a.toolName, JSON.stringify(a.args)],
  );
  return rows[0]!;
}

/** The user's own approval, locked for its decision; null for anyone else's. */
export async function lockOwnApproval(q: Queryable, userId: string, id: string): Promise<ApprovalRow | null> {
  const rows = await q.query<ApprovalRow>('SELECT * FROM agent_approvals WHERE id = $1 AND user_id = $2 FOR UPDATE', [id, userId]);
  return rows[0] ?? null;
}

export async function listOwnApprovals(q: Queryable, userId: string, status: ApprovalStatus | undefined, limit: number): Promise<ApprovalRow[]> {
  return q.query<ApprovalRow>(
    'SELECT * FROM agent_approvals WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, id DESC LIMIT $3',
    [userId, status ?? null, limit],
  );
}

/**
 * A thread's approvals the agent has not heard back about yet (pending, or decided over the API),
 * oldest first. Not locked: each pending one is claimed under its own lock when decided.
 */
export async function unreportedOfThread(q: Queryable, userId: string, threadId: string): Promise<ApprovalRow[]> {
  return q.query<ApprovalRow>(
    `SELECT * FROM agent_approvals WHERE user_id = $1 AND thread_id = $2 AND reported_at IS NULL AND status IN ('pending', 'approved', 'denied')
     ORDER BY created_at, id`,
    [userId, threadId],
  );
}

export async function decideApproval(q: Queryable, id: string, d: { status: Exclude<ApprovalStatus, 'pending'>; by: string; outcome?: ToolOutcome | null; reported?: boolean }): Promise<ApprovalRow> {
  const rows = await q.query<ApprovalRow>(
    `UPDATE agent_approvals SET status = $2, decided_by = $3, decided_at = now(), outcome = $4, reported_at = CASE WHEN $5 THEN now() END
     WHERE id = $1 RETURNING *`,
    [id, d.status, d.by, d.outcome == null ? null : JSON.stringify(d.outcome), d.reported ?? false],
  );
  return rows[0]!;
}

export async function markReported(q: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await q.query('UPDATE agent_approvals SET reported_at = now() WHERE id = ANY($1::uuid[])', [ids]);
}
