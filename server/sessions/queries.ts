import type { Queryable } from '../db';
import type { SessionRow } from './store';

/* What other domains may read about sessions: whether one is the caller's. */

/** The user's own session; null for anyone else's (sessions are never shared). */
export async function findOwnSession(q: Queryable, userId: string, id: string): Promise<SessionRow | null> {
  const rows = await q.query<SessionRow>('SELECT * FROM sessions WHERE id = $1 AND user_id = $2', [id, userId]);
  return rows[0] ?? null;
}
