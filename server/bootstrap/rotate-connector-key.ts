import { dataFiles, type ServerConfig } from '../config/config';
import { ProcessConnectorExecutor } from '../connectors/executor/client';
import { MasterKey } from '../vault/master-key';
import { openDatabase } from './database';

/**
 * `cynode rotate-connector-key`: the connector executor makes a new key pair and the others are
 * retired (docs/decisions/0004-vault-format.md). Credentials are sealed to the new pair from now
 * on; those sealed before still open with the retired pair until the executor rewraps them
 * (`ProcessConnectorExecutor.rewrap`). Gateways on a shared PostgreSQL may keep running: their
 * executors load a pair they do not hold when a credential needs it.
 */
export async function rotateConnectorKey(config: ServerConfig): Promise<{ kid: string }> {
  const masterKey = config.masterKey ? MasterKey.fromBase64(config.masterKey) : await MasterKey.fromFile(dataFiles.masterKey(config.dataDir));
  const database = await openDatabase(config);
  const executor = new ProcessConnectorExecutor({ db: database.db, masterKey, logLevel: config.logLevel });
  try {
    await executor.ready();
    return { kid: await executor.rotateKey() };
  } finally {
    await executor.close();
    await database.close();
  }
}
