import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCynode, type Cynode } from '../../server/app';
import { MasterKeyRotationError, rotateMasterKey } from '../../server/bootstrap/rotate-master-key';
import { rotateConnectorKey } from '../../server/bootstrap/rotate-connector-key';
import { dataFiles, loadConfig } from '../../server/config/config';
import { ProcessConnectorExecutor } from '../../server/connectors/executor/client';
import { insertCredential, insertInstance } from '../../server/connectors/store';
import type { OperationCall } from '../../server/connectors/executor-api';
import { PSK_CONTEXT } from '../../server/nodes/psk';
import { readSealedPsk, workerTokenContext, workerTokenFor } from '../../server/nodes/store';
import { Vault } from '../../server/vault/envelope';
import { MasterKey } from '../../server/vault/master-key';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startWebApiPeers, type WebApiPeers } from '../support/web-api-peers';

// `cynode rotate-master-key`: what was sealed under the old master key opens under the new one
// after a restart (node tokens, the join key, the executor's private key, and through it the
// connector credentials), and no longer under the old one.

const TOKEN = 'rotation-test-token-4d2b8e';
const binding = { instanceId: 'inst-r', credentialId: 'cred-r', version: 3 };

let peers: WebApiPeers;
beforeAll(async () => {
  peers = await startWebApiPeers({ mattermost: 'm', discord: 'd', slack: 's', github: 'g' });
});
afterAll(async () => {
  await peers?.stop();
});

const call = (jwe: string): OperationCall => ({
  requestId: 'req-rot',
  instanceId: binding.instanceId,
  type: 'http',
  config: { base_url: `${peers.url}/echo` },
  credential: { ...binding, jwe },
  operation: 'request',
  params: { method: 'GET', path: 'x' },
  timeoutMs: 10_000,
  egressAllow: ['127.0.0.1'],
});

async function sealSecrets(server: TestServer, vault: Vault) {
  const nodeId = randomUUID();
  await server.cynode.db.query('INSERT INTO nodes (id, node_slug, worker_api_token_ciphertext) VALUES ($1, $2, $3)', [nodeId, `rot-${nodeId.slice(0, 8)}`, vault.seal('worker-token-1', workerTokenContext(nodeId))]);
  const psk = vault.open((await readSealedPsk(server.cynode.db))!, PSK_CONTEXT);
  const jwe = await server.cynode.connectorExecutor.seal({ type: 'bearer_token', token: TOKEN }, binding);
  return { nodeId, psk, jwe };
}

async function expectAllOpen(cynode: Cynode, vault: Vault, old: { vault: Vault; key: MasterKey }, sealed: Awaited<ReturnType<typeof sealSecrets>>) {
  expect(await workerTokenFor(cynode.db, vault, sealed.nodeId)).toBe('worker-token-1');
  expect(vault.open((await readSealedPsk(cynode.db))!, PSK_CONTEXT)).toBe(sealed.psk);
  expect(await cynode.connectorExecutor.invoke(call(sealed.jwe))).toMatchObject({ ok: true });
  expect(peers.requests.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  // The old key opens none of it any more.
  await expect(workerTokenFor(cynode.db, old.vault, sealed.nodeId)).rejects.toThrow(/another master key/);
  const psk = (await readSealedPsk(cynode.db))!;
  expect(() => old.vault.open(psk, PSK_CONTEXT)).toThrow(/another master key/);
  const stale = new ProcessConnectorExecutor({ db: cynode.db, masterKey: old.key, logLevel: 'silent' });
  try {
    await expect(stale.ready()).rejects.toThrow(/another master key/);
  } finally {
    await stale.close();
  }
}

// Each case starts the server twice and the executor four times.
const SLOW = { timeout: 180_000 };

describe.each(DB_KINDS)('rotate-master-key (%s)', (kind) => {
  it('moves everything sealed under a key file to a new key file, keeping the previous one beside it', SLOW, async () => {
    const server = await startTestServer(kind);
    let restarted: Cynode | undefined;
    try {
      const keyFile = dataFiles.masterKey(server.config.dataDir);
      const oldKey = await MasterKey.fromFile(keyFile);
      const oldVault = new Vault(oldKey);
      const oldText = await readFile(keyFile, 'utf8');
      const sealed = await sealSecrets(server, oldVault);
      await server.cynode.close();

      const done = await rotateMasterKey(server.config);
      expect(done).toMatchObject({ source: 'file', nodeSecrets: 2, executorKeys: 1, keyFile, previousKeyFile: `${keyFile}.previous` });
      expect(done.newKey).toBeUndefined();
      expect(await readFile(`${keyFile}.previous`, 'utf8')).toBe(oldText);
      expect(await readFile(keyFile, 'utf8')).not.toBe(oldText);
      expect((await stat(keyFile)).mode & 0o777).toBe(0o600);

      restarted = await startCynode(server.config);
      await expectAllOpen(restarted, new Vault(await MasterKey.fromFile(keyFile)), { vault: oldVault, key: oldKey }, sealed);
    } finally {
      await restarted?.close();
      await server.close();
    }
  });
});

describe('rotate-master-key', () => {
  it('with CYNODE_MASTER_KEY, answers the new key for the operator to configure', SLOW, async () => {
    const oldBase64 = randomBytes(32).toString('base64');
    const server = await startTestServer('pglite', { masterKey: oldBase64 });
    let restarted: Cynode | undefined;
    try {
      const oldKey = MasterKey.fromBase64(oldBase64);
      const sealed = await sealSecrets(server, new Vault(oldKey));
      await server.cynode.close();
      const done = await rotateMasterKey(server.config);
      expect(done).toMatchObject({ source: 'environment', nodeSecrets: 2, executorKeys: 1, newKey: expect.any(String) });
      await expect(stat(dataFiles.masterKey(server.config.dataDir))).rejects.toThrow();
      restarted = await startCynode({ ...server.config, masterKey: done.newKey });
      await expectAllOpen(restarted, new Vault(MasterKey.fromBase64(done.newKey!)), { vault: new Vault(oldKey), key: oldKey }, sealed);
    } finally {
      await restarted?.close();
      await server.close();
    }
  });

  it('rotate-connector-key: new credentials go to the new pair, older ones still open', SLOW, async () => {
    const server = await startTestServer('pglite');
    let restarted: Cynode | undefined;
    try {
      const old = await server.cynode.connectorExecutor.seal({ type: 'bearer_token', token: TOKEN }, binding);
      await server.cynode.close();
      const { kid } = await rotateConnectorKey(server.config);
      restarted = await startCynode(server.config);
      const fresh = await restarted.connectorExecutor.seal({ type: 'bearer_token', token: TOKEN }, binding);
      const kidOf = (jwe: string) => JSON.parse(Buffer.from(JSON.parse(jwe).protected, 'base64url').toString()).kid;
      expect(kidOf(fresh)).toBe(kid);
      expect(kidOf(old)).not.toBe(kid);
      for (const jwe of [old, fresh]) expect(await restarted.connectorExecutor.invoke(call(jwe))).toMatchObject({ ok: true });
    } finally {
      await restarted?.close();
      await server.close();
    }
  });

  it('rotate-connector-key rewraps every stored credential to the new pair; it still opens to the same secret', SLOW, async () => {
    const server = await startTestServer('pglite');
    let restarted: Cynode | undefined;
    try {
      const db = server.cynode.db;
      const [owner] = await db.query<{ id: string }>('SELECT id FROM users LIMIT 1');
      const instanceId = await insertInstance(db, { type: 'http', name: 'rewrap', ownerUserId: owner!.id, ownerGroupId: null, projectId: null, config: {}, by: null as unknown as string });
      const credentialId = randomUUID();
      const stored = { instanceId, credentialId, version: 1 };
      const jwe = await server.cynode.connectorExecutor.seal({ type: 'bearer_token', token: TOKEN }, stored);
      const kidOf = (j: string) => JSON.parse(Buffer.from(JSON.parse(j).protected, 'base64url').toString()).kid;
      await insertCredential(db, { id: credentialId, instanceId, type: 'bearer_token', jwe, keyId: kidOf(jwe), expiresAt: null, by: null as unknown as string });
      await server.cynode.close();
      const { kid, rewrapped } = await rotateConnectorKey(server.config);
      expect(rewrapped).toBe(1);
      restarted = await startCynode(server.config);
      const [row] = await restarted.db.query<{ jwe: string; key_id: string }>('SELECT jwe, key_id FROM connector_credentials WHERE id = $1', [credentialId]);
      expect(row!.key_id).toBe(kid);
      expect(kidOf(row!.jwe)).toBe(kid);
      expect(row!.jwe).not.toBe(jwe);
      const [{ n }] = (await restarted.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM connector_credentials c JOIN connector_executor_keys k ON k.kid = c.key_id WHERE k.retired_at IS NOT NULL AND c.jwe IS NOT NULL',
      )) as [{ n: number }];
      expect(n).toBe(0);
      const outcome = await restarted.connectorExecutor.invoke({ ...call(row!.jwe), instanceId, credential: { ...stored, jwe: row!.jwe } });
      expect(outcome).toMatchObject({ ok: true });
      expect(peers.requests.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      await restarted?.close();
      await server.close();
    }
  });

  it('refuses a key kept in the OS keychain, and a data directory without a key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cynode-rotate-'));
    try {
      const config = loadConfig({}, { dataDir: dir, logLevel: 'silent' });
      await expect(rotateMasterKey(config)).rejects.toThrow(MasterKeyRotationError);
      await writeFile(`${dataFiles.masterKey(dir)}.keychain`, 'marker\n');
      await expect(rotateMasterKey(config)).rejects.toThrow(/OS keychain/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
