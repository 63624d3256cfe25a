import { dataFiles, type ServerConfig } from '../config/config';
import { ProcessConnectorExecutor } from '../connectors/executor/client';
import { MasterKey } from '../vault/master-key';
import { rewrapStoredCredentials } from '../connectors/rewrap';
import { openDatabase } from './database';

/**
 * `cynode rotate-connector-key`: the connector executor makes a new key pair and the others are
 * retired (docs/decisions/0004-vault-format.md). Credentials are sealed to the new pair from now
 * on, and every stored credential is rewrapped to it inside the executor in one transaction, so no
 * credential is left on a retired pair. Gateways on a shared PostgreSQL may keep running: their
 * executors load a pair they do not hold when a credential needs it.
 */
export async function rotateConnectorKey(config: ServerConfig): Promise<{ kid: string; rewrapped: number }> {
  const masterKey = config.masterKey ? MasterKey.fromBase64(config.masterKey) : await MasterKey.fromFile(dataFiles.masterKey(config.dataDir));
  const database = await openDatabase(config);
  const executor = new ProcessConnectorExecutor({ db: database.db, masterKey, logLevel: config.logLevel });
  try {
    await executor.ready();
    const kid = await executor.rotateKey();
    return { kid, rewrapped: await rewrapStoredCredentials(database.db, executor, kid) };
  } finally {
    await executor.close();
    await database.close();
  }
}
