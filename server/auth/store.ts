import type { Queryable } from '../db';

/** The user and their password hash, for sign-in only. */
export async function findLoginCandidate(
  q: Queryable,
  handle: string,
): Promise<{ id: string; handle: string; is_active: boolean; is_system: boolean; password_hash: string | null } | null> {
  const rows = await q.query<{ id: string; handle: string; is_active: boolean; is_system: boolean; password_hash: string | null }>(
    `SELECT u.id, u.handle, u.is_active, u.is_system, pc.password_hash FROM users u LEFT JOIN password_credentials pc ON pc.user_id = u.id WHERE u.handle = $1`,
    [handle],
  );
  return rows[0] ?? null;
}

export async function insertSession(q: Queryable, s: { userId: string; ttlSeconds: number; ip: string; userAgent: string | undefined }): Promise<string> {
  const rows = await q.query<{ id: string }>(
    `INSERT INTO auth_sessions (user_id, expires_at, ip, user_agent, last_used_at)
     VALUES ($1, now() + make_interval(secs => $2), $3, $4, now()) RETURNING id`,
    [s.userId, s.ttlSeconds, s.ip, s.userAgent?.slice(0, 512) ?? null],
  );
  return rows[0]!.id;
}

export async function insertRefreshToken(q: Queryable, sessionId: string, hash: string): Promise<void> {
  await q.query('INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)', [hash, sessionId]);
}

export interface RefreshTokenState {
  session_id: string;
  rotated: boolean;
  /** Rotated no longer than the grace period ago. */
  just_rotated: boolean;
  session_usable: boolean;
  user_id: string;
  handle: string;
}

/** Locks the token row: refreshes racing with the same token take their turns. */
export async function lockRefreshToken(q: Queryable, hash: string, graceSeconds: number): Promise<RefreshTokenState | null> {
  const rows = await q.query<RefreshTokenState>(
    `SELECT rt.session_id, rt.rotated_at IS NOT NULL AS rotated,
            coalesce(rt.rotated_at > now() - make_interval(secs => $2), false) AS just_rotated,
            (s.is_active AND s.expires_at > now() AND u.is_active) AS session_usable,
            u.id AS user_id, u.handle
       FROM refresh_tokens rt
       JOIN auth_sessions s ON s.id = rt.session_id
       JOIN users u ON u.id = s.user_id
      WHERE rt.token_hash = $1
      FOR UPDATE OF rt`,
    [hash, graceSeconds],
  );
  return rows[0] ?? null;
}

export async function markRotated(q: Queryable, hash: string): Promise<void> {
  await q.query('UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1', [hash]);
}

export async function touchSession(q: Queryable, sessionId: string): Promise<void> {
  await q.query('UPDATE auth_sessions SET last_used_at = now(), updated_at = now() WHERE id = $1', [sessionId]);
}

export async function revokeSession(q: Queryable, sessionId: string, reason: string): Promise<boolean> {
  const rows = await q.query<{ id: string }>(
    `UPDATE auth_sessions SET is_active = false, revoked_at = now(), revoked_reason = $2, updated_at = now()
     WHERE id = $1 AND is_active RETURNING id`,
    [sessionId, reason],
  );
  return rows.length > 0;
}

export async function findSessionByRefreshToken(q: Queryable, hash: string): Promise<{ session_id: string; user_id: string } | null> {
  const rows = await q.query<{ session_id: string; user_id: string }>(
    'SELECT rt.session_id, s.user_id FROM refresh_tokens rt JOIN auth_sessions s ON s.id = rt.session_id WHERE rt.token_hash = $1',
    [hash],
  );
  return rows[0] ?? null;
}

/** The identity behind an access token, only while its session and its user are both active. */
export async function activeSessionUser(q: Queryable, sessionId: string, userId: string): Promise<{ handle: string; expires_at: Date } | null> {
  const rows = await q.query<{ handle: string; expires_at: Date }>(
    `SELECT u.handle, s.expires_at FROM auth_sessions s JOIN users u ON u.id = s.user_id
     WHERE s.id = $1 AND s.user_id = $2 AND s.is_active AND s.expires_at > now() AND u.is_active`,
    [sessionId, userId],
  );
  return rows[0] ?? null;
}
