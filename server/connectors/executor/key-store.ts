import type { Queryable } from '../../db';
import type { ExecutorKeyRecord } from './protocol';

/** The executor's key pairs (connector_executor_keys); the private halves only ever sealed. */

interface KeyRow {
  kid: string;
  public_jwk: JsonWebKey;
  private_key_sealed: string;
  retired_at: Date | string | null;
}

export interface StoredExecutorKey extends ExecutorKeyRecord {
  retired: boolean;
}

/** Every pair, the one to seal to (newest not retired) first. */
export async function listExecutorKeys(q: Queryable, options: { forUpdate?: boolean } = {}): Promise<StoredExecutorKey[]> {
  const rows = await q.query<KeyRow>(
    `SELECT kid, public_jwk, private_key_sealed, retired_at FROM connector_executor_keys ORDER BY (retired_at IS NULL) DESC, created_at DESC, kid${options.forUpdate ? ' FOR UPDATE' : ''}`,
  );
  return rows.map((r) => ({ kid: r.kid, publicJwk: r.public_jwk, privateKeySealed: r.private_key_sealed, retired: r.retired_at !== null }));
}

/** The public key credentials are sealed to now: the gateway reads nothing else of this table for sealing. */
export async function currentPublicKey(q: Queryable): Promise<{ kid: string; publicJwk: JsonWebKey } | null> {
  const rows = await q.query<{ kid: string; public_jwk: JsonWebKey }>(
    'SELECT kid, public_jwk FROM connector_executor_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1',
  );
  return rows[0] ? { kid: rows[0].kid, publicJwk: rows[0].public_jwk } : null;
}

export async function insertExecutorKey(q: Queryable, key: ExecutorKeyRecord): Promise<void> {
  await q.query('INSERT INTO connector_executor_keys (kid, public_jwk, private_key_sealed) VALUES ($1, $2::jsonb, $3) ON CONFLICT (kid) DO NOTHING', [
    key.kid,
    JSON.stringify(key.publicJwk),
    key.privateKeySealed,
  ]);
}

/** Retires every pair but `kid`: new credentials are sealed to it; the others still open theirs. */
export async function retireExecutorKeysExcept(q: Queryable, kid: string): Promise<void> {
  await q.query('UPDATE connector_executor_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL', [kid]);
}

export async function replaceSealedPrivateKey(q: Queryable, kid: string, sealed: string): Promise<void> {
  await q.query('UPDATE connector_executor_keys SET private_key_sealed = $2 WHERE kid = $1', [kid, sealed]);
}
