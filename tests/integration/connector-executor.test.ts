import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { dataFiles } from '../../server/config/config';
import { ProcessConnectorExecutor } from '../../server/connectors/executor/client';
import type { OperationCall } from '../../server/connectors/executor-api';
import { MasterKey } from '../../server/vault/master-key';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startWebApiPeers, type WebApiPeers } from '../support/web-api-peers';

// The connector executor process as the server starts it: credentials sealed by the gateway open
// only inside it, only for the row they were sealed for, and the process failing never hangs a call.

const TOKEN = 'executor-test-token-7f3a9c1e5b';
const PARAM = 'param-value-9e1d77';

const kidOf = (jwe: string): string => JSON.parse(Buffer.from(JSON.parse(jwe).protected, 'base64url').toString()).kid;

let peers: WebApiPeers;
beforeAll(async () => {
  peers = await startWebApiPeers({ mattermost: 'm', discord: 'd', slack: 's', github: 'g' });
});
afterAll(async () => {
  await peers?.stop();
});

describe.each(DB_KINDS)('connector executor (%s)', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind);
  });
  afterAll(async () => {
    await server?.close();
  });

  const binding = { instanceId: 'inst-1', credentialId: 'cred-1', version: 1 };
  const callWith = (jwe: string, over: Partial<OperationCall> = {}): OperationCall => ({
    requestId: 'req-1',
    instanceId: binding.instanceId,
    type: 'http',
    config: { base_url: `${peers.url}/echo/api` },
    credential: { ...binding, jwe },
    operation: 'request',
    params: { method: 'GET', path: 'items' },
    timeoutMs: 10_000,
    egressAllow: ['127.0.0.1'],
    ...over,
  });

  it('runs an operation with a sealed credential: the peer sees the token, the gateway only ciphertext', async () => {
    const executor = server.cynode.connectorExecutor;
    const jwe = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
    expect(jwe).not.toContain(TOKEN);
    expect(JSON.parse(jwe)).toMatchObject({ protected: expect.any(String), ciphertext: expect.any(String) });
    const outcome = await executor.invoke(callWith(jwe));
    expect(outcome).toMatchObject({ ok: true, attempts: 1, result: { status: 200 } });
    expect(peers.requests.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(JSON.stringify(outcome)).not.toContain(TOKEN);
  });

  it('reaches the peer of a gated call only once its gate opens, and never when the gate fails', async () => {
    // The gateway writes the call's history row while the executor prepares: the peer must not
    // see the request before that row exists, nor at all when it could not be written.
    const executor = server.cynode.connectorExecutor;
    const jwe = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
    const before = peers.requests.length;
    let open!: () => void;
    const outcome = executor.invoke(callWith(jwe), undefined, new Promise<void>((resolve) => (open = resolve)));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(peers.requests.length).toBe(before);
    open();
    expect(await outcome).toMatchObject({ ok: true, attempts: 1 });
    expect(peers.requests.length).toBe(before + 1);

    const failed = Promise.reject(new Error('the history row could not be written'));
    failed.catch(() => {});
    expect(await executor.invoke(callWith(jwe), undefined, failed)).toMatchObject({ ok: false, failure: 'transient', attempts: 0 });
    expect(peers.requests.length).toBe(before + 1);
  });

  it('does not open a credential copied to another binding', async () => {
    const executor = server.cynode.connectorExecutor;
    const jwe = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
    for (const other of [{ credentialId: 'cred-2' }, { version: 2 }]) {
      const outcome = await executor.invoke({ ...callWith(jwe), credential: { ...binding, ...other, jwe } });
      expect(outcome).toMatchObject({ ok: false, failure: 'permanent', attempts: 0 });
      expect(JSON.stringify(outcome)).not.toContain(TOKEN);
    }
    const elsewhere = await executor.invoke({ ...callWith(jwe), instanceId: 'inst-2', credential: { ...binding, instanceId: 'inst-2', jwe } });
    expect(elsewhere).toMatchObject({ ok: false, failure: 'permanent' });
  });

  it('refuses destinations not allowed, and results off their schema', async () => {
    const executor = server.cynode.connectorExecutor;
    const jwe = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
    expect(await executor.invoke(callWith(jwe, { egressAllow: [] }))).toMatchObject({ ok: false, failure: 'policy_denied' });
    expect(await executor.invoke(callWith(jwe, { type: 'nope' }))).toMatchObject({ ok: false, failure: 'validation_error' });
  });

  it('retries a transient failure of an idempotent operation, and refuses a result over the size cap', async () => {
    const executor = server.cynode.connectorExecutor;
    const discord = { instanceId: 'inst-d', credentialId: 'cred-d', version: 1 };
    const jwe = await executor.seal({ type: 'bearer_token', token: 'd' }, discord);
    peers.failNext(503);
    const read = await executor.invoke({
      ...callWith(jwe),
      instanceId: discord.instanceId,
      type: 'discord',
      config: { base_url: peers.url },
      credential: { ...discord, jwe },
      operation: 'read_history',
      params: { channel_id: '1234567890', limit: 5 },
    });
    expect(read).toMatchObject({ ok: true, attempts: 2, result: { messages: expect.any(Array) } });

    const http = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
    const big = await executor.invoke(
      callWith(http, { config: { base_url: `${peers.url}/`, max_response_bytes: 4 * 1024 * 1024 }, params: { method: 'GET', path: 'big', query: { bytes: 1_500_000 } } }),
    );
    expect(big).toMatchObject({ ok: false, failure: 'permanent', message: expect.stringMatching(/more than the 1048576 bytes/) });
  });

  it('enforces the smaller timeout', async () => {
    const executor = server.cynode.connectorExecutor;
    const jwe = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
    const outcome = await executor.invoke(callWith(jwe, { config: { base_url: `${peers.url}/` }, params: { method: 'GET', path: 'slow', query: { ms: 3000 } }, timeoutMs: 300 }));
    expect(outcome).toMatchObject({ ok: false, failure: 'transient' });
    expect(outcome.durationMs).toBeLessThan(2500);
  });

  it('fails calls in flight closed when the executor dies, and starts a new one for the next call', async () => {
    const executor = server.cynode.connectorExecutor;
    const jwe = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
    const slow = executor.invoke(callWith(jwe, { config: { base_url: `${peers.url}/` }, params: { method: 'GET', path: 'slow', query: { ms: 5000 } } }));
    await new Promise((r) => setTimeout(r, 300));
    const pid = executor.pid!;
    process.kill(pid, 'SIGKILL');
    const failed = await slow;
    expect(failed).toMatchObject({ ok: false, failure: 'transient' });
    expect(failed.durationMs).toBeLessThan(4000);
    const again = await executor.invoke(callWith(jwe));
    expect(again).toMatchObject({ ok: true });
    expect(executor.pid).not.toBe(pid);
  });

  it('rotates its key pair: new credentials are sealed to the new one, older ones open until rewrapped', async () => {
    const executor = server.cynode.connectorExecutor;
    const old = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
    const kid = await executor.rotateKey();
    const fresh = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
    expect(kidOf(fresh)).toBe(kid);
    expect(kidOf(old)).not.toBe(kid);
    expect(await executor.invoke(callWith(old))).toMatchObject({ ok: true });
    const [rewrapped] = await executor.rewrap([{ ...binding, jwe: old }]);
    expect(kidOf(rewrapped!)).toBe(kid);
    expect(rewrapped).not.toContain(TOKEN);
    expect(await executor.invoke(callWith(rewrapped!))).toMatchObject({ ok: true });
    // Rewrapping keeps the binding: the result still opens nowhere else.
    expect(await executor.invoke({ ...callWith(rewrapped!), credential: { ...binding, version: 9, jwe: rewrapped! } })).toMatchObject({ ok: false, failure: 'permanent' });
  });

  it('logs each call without its credential, parameters or keys', async () => {
    const chunks: string[] = [];
    const keyText = (await readFile(dataFiles.masterKey(server.config.dataDir), 'utf8')).trim();
    const masterKey = MasterKey.fromBase64(keyText);
    const executor = new ProcessConnectorExecutor({ db: server.cynode.db, masterKey, logLevel: 'trace', onLog: (c) => chunks.push(c) });
    try {
      const jwe = await executor.seal({ type: 'bearer_token', token: TOKEN }, binding);
      const withParam = { params: { method: 'GET', path: 'items', headers: { 'X-Probe': PARAM } } };
      expect(await executor.invoke(callWith(jwe, withParam))).toMatchObject({ ok: true });
      expect(await executor.invoke({ ...callWith(jwe, withParam), credential: { ...binding, version: 2, jwe } })).toMatchObject({ ok: false });
      expect(await executor.invoke(callWith(jwe, { ...withParam, egressAllow: [] }))).toMatchObject({ ok: false, failure: 'policy_denied' });
      expect(await executor.health({ requestId: 'h', instanceId: binding.instanceId, type: 'http', config: { base_url: `${peers.url}/` }, credential: { ...binding, jwe }, timeoutMs: 5000, egressAllow: ['127.0.0.1'] })).toBeDefined();
    } finally {
      await executor.close();
    }
    const log = chunks.join('');
    const lines = log.trim().split('\n').map((l) => JSON.parse(l) as { name: string; msg: string });
    expect(lines.every((l) => l.name === 'connector-executor')).toBe(true);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['connector operation succeeded', 'connector operation failed']));
    for (const secret of [TOKEN, PARAM, keyText, Buffer.from(masterKey.derive('connector-executor-vault')).toString('base64')]) expect(log).not.toContain(secret);
    expect(log).not.toMatch(/"d":"/); // no private JWK
  });
});
