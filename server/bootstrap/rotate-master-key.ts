import { randomBytes } from 'node:crypto';
import { access, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dataFiles, type ServerConfig } from '../config/config';
import { ProcessConnectorExecutor } from '../connectors/executor/client';
import { resealNodeSecrets } from '../nodes/reseal';
import { Vault } from '../vault/envelope';
import { MasterKey } from '../vault/master-key';
import { openDatabase } from './database';

/*
 * `cynode rotate-master-key`: every value sealed under the master key is opened with the old key
 * and sealed under a new one, in one transaction with both keys in hand, so no value is ever
 * readable under neither key and the database never holds a mix (docs/decisions/0004-vault-format.md).
 *
 * - the nodes' Worker API tokens and the join key: opened and sealed again here;
 * - the connector executor's private keys: opened and sealed again inside an executor process
 *   (this process never holds them), with vault keys derived from the old and the new master key.
 *   Connector credentials are sealed to the executor's public key, not under the master key: they
 *   do not change, and nothing here can read them.
 *
 * Every gateway on the database must be stopped: they hold the old key. Access tokens and node
 * tokens are signed with keys derived from the master key, so users sign in again and nodes
 * register again (with the unchanged join key) when the gateways come back.
 */

export class MasterKeyRotationError extends Error {
  override readonly name = 'MasterKeyRotationError';
}

export interface MasterKeyRotation {
  /** Where the master key came from, and so where the new one goes. */
  source: 'environment' | 'file';
  /** Sealed values moved to the new key: node secrets and executor private keys. */
  nodeSecrets: number;
  executorKeys: number;
  /** environment: the new key (base64), which the operator must now configure; never for a file. */
  newKey?: string;
  /** file: the new key file, and where the previous key was kept. */
  keyFile?: string;
  previousKeyFile?: string;
}

/** The keychain marker of the desktop (main/shell/keychain.ts): the key is in the OS keychain. */
const keychainMarker = (dataDir: string) => `${dataFiles.masterKey(dataDir)}.keychain`;

export async function rotateMasterKey(config: ServerConfig, newKeyBase64?: string): Promise<MasterKeyRotation> {
  const nextBase64 = newKeyBase64 ?? randomBytes(32).toString('base64');
  const next = MasterKey.fromBase64(nextBase64);
  let old: MasterKey;
  let keyFile: string | undefined;
  if (config.masterKey) {
    old = MasterKey.fromBase64(config.masterKey);
  } else {
    if (await exists(keychainMarker(config.dataDir))) {
      throw new MasterKeyRotationError(`the master key of ${config.dataDir} is in the OS keychain; rotating it there is not supported yet`);
    }
    keyFile = dataFiles.masterKey(config.dataDir);
    if (!(await exists(keyFile))) throw new MasterKeyRotationError(`there is no master key in ${config.dataDir} (${keyFile}): nothing is sealed yet`);
    old = MasterKey.fromBase64((await readFile(keyFile, 'utf8')).trim());
  }
  const oldVault = new Vault(old);
  const nextVault = new Vault(next);
  if (oldVault.kid === nextVault.kid) throw new MasterKeyRotationError('the new master key is the current one');

  // The new key is on disk before any value depends on it; the swap of the files follows the commit.
  const pending = keyFile ? `${keyFile}.next` : undefined;
  if (pending) {
    if (await exists(pending)) {
      throw new MasterKeyRotationError(
        `${pending} exists: an earlier rotation stopped half way. If the server starts with ${keyFile}, delete ${pending}; otherwise the rotation committed: move ${keyFile} aside and ${pending} in its place`,
      );
    }
    await writeFile(pending, nextBase64 + '\n', { mode: 0o600, flag: 'wx' });
  }

  const database = await openDatabase(config);
  const executor = new ProcessConnectorExecutor({ db: database.db, masterKey: old, logLevel: config.logLevel });
  let moved: { nodeSecrets: number; executorKeys: number };
  try {
    await executor.ready().catch((err: unknown) => {
      throw new MasterKeyRotationError(`the connector executor cannot open its keys with the current master key: ${(err as Error).message}`);
    });
    moved = await database.db.transaction(async (tx) => {
      const nodeSecrets = await resealNodeSecrets(tx, oldVault, nextVault);
      const executorKeys = await executor.resealKeys(tx, next);
      return { nodeSecrets, executorKeys };
    });
  } catch (err) {
    if (pending) await rm(pending, { force: true });
    throw err;
  } finally {
    await executor.close();
    await database.close();
  }

  if (keyFile && pending) {
    const previous = `${keyFile}.previous`;
    await rename(keyFile, previous);
    await rename(pending, keyFile);
    return { source: 'file', ...moved, keyFile, previousKeyFile: previous };
  }
  return { source: 'environment', ...moved, newKey: nextBase64 };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
