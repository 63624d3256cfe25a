import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { until } from '../support/until';

/*
 * Clients that send a request's headers and then its body a few bytes at a time, or never sign
 * in, hold places in the request cap. They must not be able to take the places signed-in users,
 * nodes and health checks need: real slow sockets against a server with a small cap.
 */

const CAP = 8;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** node:http rather than fetch: it can send from another loopback address (127.0.0.2…). */
function call(baseUrl: string, path: string, o: { method?: string; body?: unknown; token?: string; localAddress?: string } = {}): Promise<Answer> {
  const u = new URL(baseUrl);
  const body = o.body === undefined ? undefined : JSON.stringify(o.body);
  const headers: Record<string, string> = { connection: 'close' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: o.method ?? (body === undefined ? 'GET' : 'POST'), localAddress: o.localAddress, agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: (res.headers['content-type'] ?? '').includes('json') && text ? JSON.parse(text) : text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A POST whose headers promise a body of which only a few bytes ever come. */
function slowPost(baseUrl: string, path: string, localAddress = '127.0.0.1'): Socket {
  const u = new URL(baseUrl);
  const socket = connect({ host: u.hostname, port: Number(u.port), localAddress });
  socket.on('error', () => {});
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"ha`);
  return socket;
}

function capability(slug: string) {
  return {
    version: 1,
    reported_at: new Date().toISOString(),
    node: { node_slug: slug, name: `Node ${slug}`, labels: ['test'] },
    platform: { os: 'linux', arch: 'amd64' },
    compute: { cpu_cores: 4, ram_mb: 8192 },
    container_runtime: { runtime: 'docker', version: '24.0' },
    gpu: { present: false },
    sandbox: { supported: true, max_concurrency: 1 },
    inference: { supported: false, running: false },
    worker_api: { base_url: 'http://127.0.0.1:12090' },
  };
}

describe.each(DB_KINDS)('slow and anonymous clients on %s', (kind) => {
  let s: TestServer;
  let gateway: string;
  let control: string;
  let nodeToken: string;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // Slow sockets stay in flight for the whole test; the request timeout has a test of its own.
    s = await startTestServer(kind, { maxConcurrentRequests: CAP, requestTimeoutSeconds: 120 });
    gateway = s.cynode.gatewayUrl;
    control = s.cynode.controlUrl;
    const psk = (await s.api.call('/v1/nodes/join', { token: s.adminToken })).body.psk;
    const registered = await call(control, '/v1/nodes/register', { body: { psk, node_secret: randomBytes(32).toString('base64url'), capability: capability('steady') } });
    expect(registered.status).toBe(201);
    nodeToken = registered.body.auth.node_jwt;
  });
  afterAll(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await s?.close();
  });

  const slow = (baseUrl: string, path: string, count: number, from = (_i: number) => '127.0.0.1') => {
    for (let i = 0; i < count; i++) sockets.push(slowPost(baseUrl, path, from(i)));
  };
  /** Frees every slow socket's place (a socket's 'close' is what gives it back). */
  const release = async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await until('the places to be free again', async () => (await call(gateway, '/v1/no-such-route')).status === 404);
  };
  /** Probes with requests that need no credential and feed no rate limit. */
  const turnedAway = async (baseUrl: string, localAddress?: string) => {
    const res = await call(baseUrl, '/v1/no-such-route', { localAddress });
    return res.status === 429 ? res : undefined;
  };

  /** What must keep working whatever anonymous clients do. */
  const expectServed = async () => {
    expect((await call(gateway, '/v1/users/me', { token: s.adminToken })).status).toBe(200);
    expect((await call(gateway, '/healthz')).status).toBe(200);
    expect((await call(control, '/healthz')).status).toBe(200);
    // The node's heartbeat and its config poll.
    expect((await call(control, '/v1/nodes/capability', { token: nodeToken, body: capability('steady') })).status).toBe(204);
    expect((await call(control, '/v1/nodes/config', { token: nodeToken })).status).toBe(200);
  };

  it("slow sign-ins from one address take only that address's share: signed-in users, nodes and health checks are served", async () => {
    slow(gateway, '/v1/auth/login', CAP);
    slow(control, '/v1/nodes/register', CAP);
    const refused = await until('the slow sign-ins to fill their share', () => turnedAway(gateway));
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    await until('the slow registrations to fill their share', () => turnedAway(control));

    await expectServed();
    if (process.platform === 'linux') {
      // Another address signs in (127.0.0.2 is loopback too on Linux).
      const login = await call(gateway, '/v1/auth/login', { body: { handle: 'admin', password: s.adminPassword }, localAddress: '127.0.0.2' });
      expect(login.status).toBe(200);
    }
    await release();
  });

  it.runIf(process.platform === 'linux')('slow clients on many addresses fill the pool of requests without a credential, and only that pool', async () => {
    slow(gateway, '/v1/auth/login', CAP, (i) => `127.0.0.${i + 2}`);
    slow(control, '/v1/nodes/register', CAP, (i) => `127.0.0.${i + 2}`);
    await until('the slow sign-ins to fill the pool', () => turnedAway(gateway, `127.0.0.${CAP + 2}`));
    await until('the slow registrations to fill the pool', () => turnedAway(control, `127.0.0.${CAP + 2}`));

    await expectServed();
    await release();
  });
});
