import type { Db } from '../db';
import type { ProcessConnectorExecutor } from './executor/client';
import { credentialsSealedToOtherKeys, replaceCredentialCiphertext } from './store';

/**
 * Every stored credential not sealed to `kid` sealed again to it inside the executor, then written
 * back in one transaction; returns how many moved. The executor reads key pairs from the database,
 * so it rewraps outside the write transaction; a row that changed meanwhile (rotated, revoked)
 * keeps its newer ciphertext.
 */
export async function rewrapStoredCredentials(db: Db, executor: Pick<ProcessConnectorExecutor, 'rewrap'>, kid: string): Promise<number> {
  const stale = await credentialsSealedToOtherKeys(db, kid);
  if (stale.length === 0) return 0;
  const sealed = await executor.rewrap(stale.map((c) => ({ instanceId: c.instance_id, credentialId: c.id, version: c.version, jwe: c.jwe })));
  await db.transaction(async (tx) => {
    for (const [i, c] of stale.entries()) await replaceCredentialCiphertext(tx, c, { jwe: sealed[i]!, keyId: kid });
  });
  return stale.length;
}
