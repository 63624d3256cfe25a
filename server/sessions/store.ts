import type { Queryable } from '../db';
import { Conditions } from '../db/sql';

export interface SessionRow {
  id: string;
  parent_session_id: string | null;
  user_id: string;
  project_id: string | null;
  title: string | null;
  created_at: Date;
  updated_at: Date;
}

export async function insertSession(q: Queryable, s: { userId: string; parentSessionId: string | null; projectId: string | null; title: string | null }): Promise<SessionRow> {
  const rows = await q.query<SessionRow>(
    'INSERT INTO sessions (user_id, parent_session_id, project_id, title) VALUES ($1, $2, $3, $4) RETURNING *',
    [s.userId, s.parentSessionId, s.projectId, s.title],
  );
  return rows[0]!;
}

/** The user's sessions, newest first; one extra row tells whether another page exists. */
export async function listOwnSessions(q: Queryable, f: { userId: string; parentSessionId?: string; afterId?: string; limit: number }): Promise<{ sessions: SessionRow[]; more: boolean }> {
  const c = new Conditions([f.userId], ['s.user_id = $1']);
  if (f.parentSessionId) c.add('s.parent_session_id = ?', f.parentSessionId);
  if (f.afterId) c.add('(s.created_at, s.id) < (SELECT a.created_at, a.id FROM sessions a WHERE a.id = ?::uuid)', f.afterId);
  const limit = c.param(f.limit + 1);
  const rows = await q.query<SessionRow>(`SELECT s.* FROM sessions s ${c.where()} ORDER BY s.created_at DESC, s.id DESC LIMIT ${limit}`, c.params);
  return { sessions: rows.slice(0, f.limit), more: rows.length > f.limit };
}
