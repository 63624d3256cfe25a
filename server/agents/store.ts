import type { Queryable } from '../db';

export interface AgentTokenRow {
  id: string;
  user_id: string;
  handle: string;
  role: string;
  task_id: string | null;
  session_id: string | null;
  project_id: string | null;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  created_by: string | null;
}

const COLUMNS = `t.id, t.user_id, u.handle, t.role, t.task_id, t.session_id, t.project_id, t.created_at, t.expires_at, t.revoked_at, t.created_by`;

export async function insertAgentToken(
  q: Queryable,
  t: { id: string; userId: string; role: string; taskId: string | null; sessionId: string | null; projectId: string | null; createdAt: Date; expiresAt: Date; createdBy: string },
): Promise<AgentTokenRow> {
  const rows = await q.query<AgentTokenRow>(
    `WITH t AS (
       INSERT INTO agent_tokens (id, user_id, role, task_id, session_id, project_id, created_at, expires_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       RETURNING *)
     SELECT ${COLUMNS} FROM t JOIN users u ON u.id = t.user_id`,
    [t.id, t.userId, t.role, t.taskId, t.sessionId, t.projectId, t.createdAt.toISOString(), t.expiresAt.toISOString(), t.createdBy],
  );
  return rows[0]!;
}

/** The token's row while it may act: not revoked, not expired, its user active and human. */
export async function findUsableAgentToken(q: Queryable, id: string, userId: string): Promise<AgentTokenRow | null> {
  const rows = await q.query<AgentTokenRow>(
    `SELECT ${COLUMNS} FROM agent_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.id = $1 AND t.user_id = $2 AND t.revoked_at IS NULL AND t.expires_at > now() AND u.is_active AND NOT u.is_system`,
    [id, userId],
  );
  return rows[0] ?? null;
}

export async function findAgentToken(q: Queryable, id: string): Promise<AgentTokenRow | null> {
  const rows = await q.query<AgentTokenRow>(`SELECT ${COLUMNS} FROM agent_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1`, [id]);
  return rows[0] ?? null;
}

/** Newest first; every user's when `userId` is null. */
export async function listAgentTokens(q: Queryable, f: { userId: string | null; active: boolean; limit: number }): Promise<AgentTokenRow[]> {
  return q.query<AgentTokenRow>(
    `SELECT ${COLUMNS} FROM agent_tokens t JOIN users u ON u.id = t.user_id
      WHERE ($1::uuid IS NULL OR t.user_id = $1) AND (NOT $2 OR (t.revoked_at IS NULL AND t.expires_at > now()))
      ORDER BY t.created_at DESC, t.id LIMIT $3`,
    [f.userId, f.active, f.limit],
  );
}

/** Whether this call revoked it (false when it already was). */
export async function revokeAgentToken(q: Queryable, id: string): Promise<boolean> {
  const rows = await q.query<{ id: string }>('UPDATE agent_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id', [id]);
  return rows.length > 0;
}

/** An active, human user an agent may act for; null otherwise. */
export async function findActingUser(q: Queryable, id: string): Promise<{ id: string; handle: string } | null> {
  const rows = await q.query<{ id: string; handle: string }>('SELECT id, handle FROM users WHERE id = $1 AND is_active AND NOT is_system', [id]);
  return rows[0] ?? null;
}
