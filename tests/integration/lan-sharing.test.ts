import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCynode, type Cynode } from '../../server/app';
import { lanAddresses } from '../../server/system/lan-sharing';
import { ADMIN_PASSWORD, ApiClient, DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/**
 * "Share on LAN" from the settings: the gateway starts on loopback; an admin's switch makes it
 * answer on this machine's LAN addresses at once, and closes them again, without a restart.
 */

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** node:http rather than fetch: the Host and Origin headers are sent exactly as given. */
function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, path: u.pathname, headers: { connection: 'close', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The error code a connection attempt ends with (ECONNREFUSED once nothing listens). */
async function refusal(url: string): Promise<string | undefined> {
  try {
    await get(url);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

const urlOf = (address: string, port: number) => `http://${address.includes(':') ? `[${address}]` : address}:${port}`;

// IPv4 first: the address a LAN browser would most likely use.
const address = lanAddresses()[0];

describe.each(DB_KINDS)('share on LAN from the settings (%s)', (kind) => {
  let s: TestServer;
  let port: number;
  let lanUrl: string;
  const put = (enabled: unknown, token = s.adminToken) => s.api.call('/v1/system/lan-sharing', { method: 'PUT', token, body: { enabled } });
  const info = (token = s.adminToken) => s.api.call('/v1/system/info', { token });

  beforeAll(async () => {
    s = await startTestServer(kind);
    port = Number(new URL(s.cynode.gatewayUrl).port);
    if (address) lanUrl = urlOf(address, port);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('runs on a machine with a LAN address', () => {
    // Not skipped: without one, nothing below would prove anything.
    expect(address, 'os.networkInterfaces() lists no non-internal address on this machine; these tests need one (eth0 normally)').toBeTruthy();
  });

  it('is off at first: the gateway answers on loopback only', async () => {
    const res = await info();
    expect(res.status).toBe(200);
    expect(res.body.lan_sharing).toEqual({ enabled: false, urls: [], managed_by_env: false });
    expect(res.body.gateway).toMatchObject({ shared_on_lan: false, lan_urls: [] });
    expect(await refusal(`${lanUrl}/healthz`)).toBe('ECONNREFUSED');
  });

  it('is for admins: other users (operators too) get 403 and nothing changes', async () => {
    const user = await s.createUser('lan-user');
    expect((await put(true, user.token)).status).toBe(403);
    const op = await s.createUser('lan-operator');
    const bind = await s.api.call('/v1/role-bindings', { token: s.adminToken, body: { subject_type: 'user', subject_id: op.id, role: 'operator', scope_type: 'system' } });
    expect(bind.status).toBe(201);
    // Operators read the settings, they do not change them.
    expect((await info(op.token)).body.lan_sharing.enabled).toBe(false);
    expect((await put(true, op.token)).status).toBe(403);
    expect((await put('yes')).status).toBe(400);
    expect(await refusal(`${lanUrl}/healthz`)).toBe('ECONNREFUSED');
  });

  it('on: answers on the LAN address at once, through the whole request lifecycle', async () => {
    const res = await put(true);
    expect(res.status).toBe(200);
    expect(res.body.enabled).toBe(true);
    expect(res.body.managed_by_env).toBe(false);
    expect(res.body.urls).toContain(lanUrl);

    const health = await get(`${lanUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(health.text).toBe('ok');
    expect(health.headers['x-request-id']).toBeTruthy();
    // Authentication, problem details, origin checks: the gateway's own rules hold there.
    const anonymous = await get(`${lanUrl}/v1/system/info`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['content-type']).toMatch(/application\/problem\+json/);
    const auth = { authorization: `Bearer ${s.adminToken}` };
    // A LAN browser on the console it loaded from this address (same origin).
    expect((await get(`${lanUrl}/v1/system/info`, { ...auth, origin: lanUrl })).status).toBe(200);
    // The LAN URL is an allowed origin in its own right (a proxy may rewrite Host).
    expect((await get(`${s.cynode.gatewayUrl}/v1/system/info`, { ...auth, origin: lanUrl })).status).toBe(200);
    // Any other page in that browser is still refused.
    const foreign = await get(`${lanUrl}/v1/system/info`, { ...auth, origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.text).toContain('Origin not allowed');
    // A page on another name that its DNS points at this address is refused, whatever its Origin.
    const rebound = await get(`${lanUrl}/v1/system/info`, { ...auth, host: `evil.example:${port}`, origin: `http://evil.example:${port}` });
    expect(rebound.status).toBe(421);
    // Signing in from the LAN works, as a LAN browser does it.
    const lanApi = new ApiClient(lanUrl);
    expect((await lanApi.login('admin', ADMIN_PASSWORD)).access_token).toBeTruthy();

    const after = await info();
    expect(after.body.lan_sharing).toMatchObject({ enabled: true, managed_by_env: false });
    expect(after.body.lan_sharing.urls).toContain(lanUrl);
    expect(after.body.gateway).toMatchObject({ shared_on_lan: true, lan_urls: after.body.lan_sharing.urls });
    // Loopback keeps working as before.
    expect((await get(`${s.cynode.gatewayUrl}/healthz`)).status).toBe(200);

    const audit = await s.api.call('/v1/audit?action=lan_sharing_changed', { token: s.adminToken });
    expect(audit.body.events[0]).toMatchObject({ actor_handle: 'admin', resource_type: 'system_setting', resource_id: 'lan_sharing', details: { enabled: true, was: false } });
  });

  it('off: the LAN listeners close, open keep-alive connections too', async () => {
    // A keep-alive connection that has been answered and stays open.
    const socket = connect({ host: address!, port });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const answered = new Promise<string>((resolve) => socket.once('data', (d) => resolve(d.toString())));
    socket.write(`GET /healthz HTTP/1.1\r\nHost: ${new URL(lanUrl).host}\r\nConnection: keep-alive\r\n\r\n`);
    expect(await answered).toMatch(/^HTTP\/1\.1 200/);

    const res = await put(false);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ enabled: false, urls: [], managed_by_env: false });
    await closed;
    expect(await refusal(`${lanUrl}/healthz`)).toBe('ECONNREFUSED');
    expect((await get(`${s.cynode.gatewayUrl}/healthz`)).status).toBe(200);
    // A page from the LAN address is a foreign origin again (except through the Host rule, which needs that address).
    expect((await get(`${s.cynode.gatewayUrl}/v1/system/info`, { authorization: `Bearer ${s.adminToken}`, origin: lanUrl })).status).toBe(403);
  });

  it('survives a restart on the same data', async () => {
    expect((await put(true)).status).toBe(200);
    await s.cynode.close();
    let again: Cynode | undefined = await startCynode(s.config);
    try {
      const newPort = Number(new URL(again.gatewayUrl).port);
      const health = await get(`${urlOf(address!, newPort)}/healthz`);
      expect(health.status).toBe(200);
      const api = new ApiClient(again.gatewayUrl);
      const token = (await api.login('admin', ADMIN_PASSWORD)).access_token;
      const res = await api.call('/v1/system/info', { token });
      expect(res.body.lan_sharing.enabled).toBe(true);
      expect(res.body.lan_sharing.urls).toContain(urlOf(address!, newPort));
      // Turned off, it stays off across the next restart.
      expect((await api.call('/v1/system/lan-sharing', { method: 'PUT', token, body: { enabled: false } })).status).toBe(200);
      await again.close();
      again = await startCynode(s.config);
      expect(await refusal(`${urlOf(address!, Number(new URL(again.gatewayUrl).port))}/healthz`)).toBe('ECONNREFUSED');
    } finally {
      // The harness closes what it started; this one is ours.
      await again?.close();
    }
  });
});

describe('share on LAN when CYNODE_HOST decides', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('pglite', { host: '0.0.0.0' });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('the setting is read-only: info says so, PUT answers 409', async () => {
    const port = Number(new URL(s.cynode.gatewayUrl).port);
    const res = await s.api.call('/v1/system/info', { token: s.adminToken });
    expect(res.body.lan_sharing).toMatchObject({ enabled: true, managed_by_env: true });
    expect(res.body.lan_sharing.urls).toContain(urlOf(address!, port));
    const put = await s.api.call('/v1/system/lan-sharing', { method: 'PUT', token: s.adminToken, body: { enabled: false } });
    expect(put.status).toBe(409);
    expect(put.body.detail).toContain('CYNODE_HOST');
    // Still shared, by the environment.
    expect((await get(`${urlOf(address!, port)}/healthz`)).status).toBe(200);
  });
});
