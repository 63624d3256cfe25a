import type { Queryable } from '../db';
import type { Vault } from '../vault/envelope';
import { PSK_CONTEXT } from './psk';
import { readSealedPsk, rewriteSealedPsk, sealedWorkerTokens, setWorkerTokenCiphertext, workerTokenContext } from './store';

/**
 * Opens every secret of the nodes domain sealed under `from` (the nodes' Worker API tokens and
 * the join key) and seals it under `to`, in the caller's transaction: master key rotation
 * (server/bootstrap/rotate-master-key.ts). Returns how many values moved.
 */
export async function resealNodeSecrets(tx: Queryable, from: Vault, to: Vault): Promise<number> {
  let moved = 0;
  for (const { id, sealed } of await sealedWorkerTokens(tx)) {
    await setWorkerTokenCiphertext(tx, id, to.seal(from.open(sealed, workerTokenContext(id)), workerTokenContext(id)));
    moved++;
  }
  const psk = await readSealedPsk(tx);
  if (psk) {
    await rewriteSealedPsk(tx, to.seal(from.open(psk, PSK_CONTEXT), PSK_CONTEXT));
    moved++;
  }
  return moved;
}
