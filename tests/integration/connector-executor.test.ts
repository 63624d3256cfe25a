import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OperationCall } from '../../server/connectors/executor-api';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startWebApiPeers, type WebApiPeers } from '../support/web-api-peers';

// The connector executor process as the server starts it: credentials sealed by the gateway open
// only inside it, only for the row they were sealed for, and the process failing never hangs a call.

const TOKEN = 'executor-test-token-7f3a9c1e5b';

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
});
