import type { Queryable } from '../db';

export interface ApiKeyRow {
  id: string;
  name: string;
  key_prefix: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export async function insertApiKey(q: Queryable, k: { userId: string; name: string; hash: string; prefix: string; expiresAt: string | null }): Promise<ApiKeyRow> {
  const rows = await q.query<ApiKeyRow>(
    `INSERT INTO api_keys (user_id, name, key_hash, key_prefix, expires_at) VALUES ($1, $2, $3, $4, $5)
     RETURNING id, name, key_prefix, created_at, expires_at, revoked_at, last_used_at`,
    [k.userId, k.name, k.hash, k.prefix, k.expiresAt],
  );
  return rows[0]!;
}

export async function listApiKeys(q: Queryable, userId: string): Promise<ApiKeyRow[]> {
  return q.query<ApiKeyRow>(
    `SELECT id, name, key_prefix, created_at, expires_at, revoked_at, last_used_at FROM api_keys
     WHERE user_id = $1 ORDER BY created_at DESC`,
    [userId],
  );
}

/** Revokes the caller's own key; null when no such key of theirs exists. */
export async function revokeApiKey(q: Queryable, userId: string, id: string): Promise<{ id: string; already: boolean } | null> {
  const rows = await q.query<{ id: string; revoked_at: Date | null }>('SELECT id, revoked_at FROM api_keys WHERE id = $1 AND user_id = $2 FOR UPDATE', [id, userId]);
  const row = rows[0];
  if (!row) return null;
  if (row.revoked_at) return { id, already: true };
  await q.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [id]);
  return { id, already: false };
}

/** Revokes every key of the user not revoked yet; how many that was. */
export async function revokeUserApiKeys(q: Queryable, userId: string): Promise<number> {
  const rows = await q.query<{ id: string }>('UPDATE api_keys SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL RETURNING id', [userId]);
  return rows.length;
}

/** The live key with this hash and its (active, human) owner; null otherwise. */
export async function findUsableApiKey(q: Queryable, hash: string): Promise<{ id: string; user_id: string; handle: string; expires_at: Date | null } | null> {
  const rows = await q.query<{ id: string; user_id: string; handle: string; expires_at: Date | null }>(
    `SELECT k.id, k.user_id, u.handle, k.expires_at
       FROM api_keys k JOIN users u ON u.id = k.user_id
      WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
        AND u.is_active AND NOT u.is_system`,
    [hash],
  );
  return rows[0] ?? null;
}

/** Records use, at most once a minute per key (the column is shown to its owner). */
export async function touchApiKey(q: Queryable, id: string): Promise<void> {
  await q.query(`UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, [id]);
}

/** Whether the key still signs in: not revoked, not expired, its owner active and human. */
export async function apiKeyUsable(q: Queryable, id: string): Promise<boolean> {
  const rows = await q.query(
    `SELECT 1 FROM api_keys k JOIN users u ON u.id = k.user_id
      WHERE k.id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND u.is_active AND NOT u.is_system`,
    [id],
  );
  return rows.length > 0;
}
