import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, stopQuietly, type Served } from '../support/cli';
import { startWebApiPeers, type WebApiPeers } from '../support/web-api-peers';

// `cynode serve` (the build) at the most verbose log level, executor included: a connector
// credential travels through its whole life and its plaintext appears in no log line.

const TOKEN_1 = 'log-check-bearer-6a1f9e2d8c4b7035';
const TOKEN_2 = 'log-check-bearer-0d5e3c9a1b7f2468';

describe('connector credentials and the server log', () => {
  let peers: WebApiPeers;
  let run: Served | undefined;
  let dir: string;
  beforeAll(async () => {
    peers = await startWebApiPeers({ mattermost: 'm', discord: 'd', slack: 's', github: 'g' });
    dir = await mkdtemp(join(tmpdir(), 'cynode-connector-log-'));
  });
  afterAll(async () => {
    await stopQuietly(run);
    await peers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('never logs a credential, at trace level, from create to revoke', async () => {
    run = await serve({ CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: 'admin-password-1', CYNODE_LOG_LEVEL: 'trace', CYNODE_EMBEDDED_NODE: '0', CYNODE_CONNECTOR_ALLOW: '127.0.0.1' });
    const base = run.gatewayUrl;
    const login = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'admin', password: 'admin-password-1' }) });
    const { access_token: token } = (await login.json()) as { access_token: string };
    const call = async (path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    const c = await call('/v1/connectors', { type: 'http', name: 'Echo', config: { base_url: `${peers.url}/echo/api` } });
    expect(c.status).toBe(201);
    const credential = await call(`/v1/connectors/${c.body.id}/credentials`, { type: 'bearer_token', secret: { token: TOKEN_1 } });
    expect(credential.status).toBe(201);
    expect((await call(`/v1/connectors/${c.body.id}/operations/request`, { params: { method: 'GET', path: 'x' } })).status).toBe(200);
    expect((await call(`/v1/connectors/${c.body.id}/credentials/${credential.body.id}/rotate`, { secret: { token: TOKEN_2 } })).status).toBe(200);
    // A peer that refuses the credential: the failure is logged by class, never with the token.
    peers.failNext(401);
    expect((await call(`/v1/connectors/${c.body.id}/operations/request`, { params: { method: 'GET', path: 'x' } })).status).toBe(502);
    expect((await call(`/v1/connectors/${c.body.id}/credentials/${credential.body.id}/revoke`)).status).toBe(200);
    expect(peers.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${TOKEN_1}`, `Bearer ${TOKEN_2}`]);

    run.child.kill('SIGTERM');
    await run.exited;
    const log = run.stdout + run.stderr;
    // Trace level: the request log is there, so the check is not vacuous.
    expect(log).toContain('/v1/connectors/');
    for (const secret of [TOKEN_1, TOKEN_2]) expect(log).not.toContain(secret);
  });
});
