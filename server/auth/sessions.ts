import type { Queryable } from '../db';

/*
 * What other domains need of sign-in sessions: ending a user's sessions in the transaction that
 * changes their password or disables them. A function over the caller's Queryable (not an
 * AuthService method), so the users domain needs no AuthService, and none of its signing keys.
 */

/** Ends every active session of the user, but `keepSessionId` when given. */
export async function endUserSessions(q: Queryable, userId: string, reason: string, keepSessionId: string | null = null): Promise<number> {
  const rows = await q.query<{ id: string }>(
    `UPDATE auth_sessions SET is_active = false, revoked_at = now(), revoked_reason = $2, updated_at = now()
     WHERE user_id = $1 AND is_active AND id IS DISTINCT FROM $3::uuid RETURNING id`,
    [userId, reason, keepSessionId],
  );
  return rows.length;
}

