import { readFile, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityServices } from '../../server/app';
import { resetPasswordOffline } from '../../server/bootstrap/reset-password';
import { markFirstRunPasswordPending, reconcileFirstRunPassword } from '../../server/users/first-run-password';
import { ADMIN_PASSWORD, DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/** A non-loopback address of this machine, if it has one. */
const LAN_ADDRESS = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

const exists = (file: string) => stat(file).then(
  () => true,
  () => false,
);

/** node:http: fetch would not let a test send its own Host header. */
function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: any }> {
  const u = new URL(url);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: data ? JSON.parse(data) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

describe.each(DB_KINDS)('first run: choosing the admin password at the machine (%s)', (kind) => {
  // Started without CYNODE_ADMIN_PASSWORD, on every address: the generated password is pending.
  let s: TestServer;
  let file: string;
  let adminId: string;
  const pending = async () => (await s.api.call('/v1/setup')).body.first_run_password_pending as boolean;
  /** Plays a fresh first run again: the generated password pending, its file on disk. */
  const rearm = async (password: string) => {
    await markFirstRunPasswordPending(s.cynode.db, adminId);
    await writeFile(file, password + '\n', { mode: 0o600 });
  };

  beforeAll(async () => {
    s = await startTestServer(kind, { adminPassword: undefined, host: '0.0.0.0' });
    file = join(s.config.dataDir, 'initial-admin-password');
    adminId = (await s.api.call('/v1/users/me', { token: s.adminToken })).body.id;
  });
  afterAll(async () => {
    await s?.close();
  });

  it('says the generated password is pending, and nothing else, to anyone', async () => {
    expect(s.cynode.firstRun.generatedPassword).toBe(s.adminPassword);
    expect((await readFile(file, 'utf8')).trim()).toBe(s.adminPassword);
    const res = await s.api.call('/v1/setup');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ first_run_password_pending: true });
  });

  it.runIf(LAN_ADDRESS)('refuses a LAN client (403), which cannot take over the fresh install', async () => {
    const port = new URL(s.cynode.gatewayUrl).port;
    const lan = `http://${LAN_ADDRESS}:${port}`;
    // The public status is readable from the LAN (the console there says where the password is).
    expect(await (await fetch(`${lan}/v1/setup`)).json()).toEqual({ first_run_password_pending: true });
    const spoofs: Array<Record<string, string>> = [{}, { host: `127.0.0.1:${port}` }, { 'x-forwarded-for': '127.0.0.1' }];
    for (const headers of spoofs) {
      const res = await post(lan, '/v1/setup/admin-password', { password: 'lan-takeover-1' }, headers);
      expect(res.status).toBe(403);
      expect(res.type).toContain('application/problem+json');
      expect(res.body.detail).toMatch(/loopback/);
    }
    // Refused before anything is read: a bad body is no different.
    expect((await post(lan, '/v1/setup/admin-password', {})).status).toBe(403);
    expect(await pending()).toBe(true);
    expect(await exists(file)).toBe(true);
    expect((await s.api.call('/v1/auth/login', { body: { handle: 'admin', password: 'lan-takeover-1' } })).status).toBe(401);
  });

  it('refuses a loopback connection whose Host is not loopback (a DNS-rebound page)', async () => {
    const res = await post(s.cynode.gatewayUrl, '/v1/setup/admin-password', { password: 'rebound-page-1' }, { host: 'evil.example:80' });
    // No route answers a name this machine does not go by.
    expect(res.status).toBe(421);
    expect(await pending()).toBe(true);
  });

  it('holds the new password to the API rules (400), keeping the generated one', async () => {
    const res = await post(s.cynode.gatewayUrl, '/v1/setup/admin-password', { password: 'short' });
    expect(res.status).toBe(400);
    expect(res.type).toContain('application/problem+json');
    expect(await pending()).toBe(true);
  });

  it('sets it from loopback: 204, the file is gone, old password and sessions end, audited; then 409', async () => {
    const old = s.adminPassword;
    const before = await s.api.login('admin', old);
    const res = await post(s.cynode.gatewayUrl, '/v1/setup/admin-password', { password: 'my-own-password-1' });
    expect(res.status).toBe(204);
    expect(await pending()).toBe(false);
    expect(await exists(file)).toBe(false);
    expect((await s.api.call('/v1/auth/login', { body: { handle: 'admin', password: old } })).status).toBe(401);
    expect((await s.api.call('/v1/users/me', { token: before.access_token })).status).toBe(401);
    const token = (await s.api.login('admin', 'my-own-password-1')).access_token;
    const audit = await s.api.call('/v1/audit?action=first_run_password_set', { token });
    expect(audit.body.events).toHaveLength(1);
    expect(JSON.stringify(audit.body.events[0])).not.toContain('my-own-password-1');

    const again = await post(s.cynode.gatewayUrl, '/v1/setup/admin-password', { password: 'second-try-pw-1' });
    expect(again.status).toBe(409);
    expect(again.type).toContain('application/problem+json');
    expect((await s.api.call('/v1/auth/login', { body: { handle: 'admin', password: 'second-try-pw-1' } })).status).toBe(401);
    s.adminPassword = 'my-own-password-1';
  });

  it('any other change of the admin password ends it too: change, admin reset, cynode reset-password', async () => {
    // Changing one's own password.
    await rearm('generated-pw-a1');
    const token = (await s.api.login('admin', s.adminPassword)).access_token;
    const changed = await s.api.call('/v1/users/me/password', { token, body: { current_password: s.adminPassword, new_password: 'changed-pw-b2' } });
    expect(changed.status).toBe(204);
    expect(await pending()).toBe(false);
    expect(await exists(file)).toBe(false);

    // Another admin's reset.
    await rearm('generated-pw-c3');
    // (The harness's admin token ended with the first-run password; this session is current.)
    const other = (await s.api.call('/v1/users', { token, body: { handle: 'second-admin', password: 'second-admin-pw-1' } })).body as { id: string };
    const otherToken = (await s.api.login('second-admin', 'second-admin-pw-1')).access_token;
    expect((await s.api.call('/v1/role-bindings', { token, body: { subject_type: 'user', subject_id: other.id, role: 'admin', scope_type: 'system' } })).status).toBe(201);
    const reset = await s.api.call(`/v1/users/${adminId}/reset_password`, { token: otherToken, body: { new_password: 'reset-pw-d4' } });
    expect(reset.status).toBe(204);
    expect(await pending()).toBe(false);
    expect(await exists(file)).toBe(false);

    // At the machine, offline (the command's own function; the CLI suite runs the command itself).
    await rearm('generated-pw-e5');
    await resetPasswordOffline(identityServices(s.cynode.db, file).users, 'admin', 'offline-pw-f6');
    expect(await pending()).toBe(false);
    expect(await exists(file)).toBe(false);

    // Somebody else's password change leaves the admin's first-run state alone.
    await rearm('generated-pw-g7');
    expect((await s.api.call(`/v1/users/${other.id}/reset_password`, { token: (await s.api.login('admin', 'offline-pw-f6')).access_token, body: { new_password: 'other-pw-h8' } })).status).toBe(204);
    expect(await pending()).toBe(true);
    expect(await exists(file)).toBe(true);
    s.adminPassword = 'offline-pw-f6';
  });

  it('at start, a file whose password no longer opens the account is removed; one that does is pending again', async () => {
    await resetPasswordOffline(identityServices(s.cynode.db, file).users, 'admin', 'settled-pw-1');
    await writeFile(file, 'stale-generated-pw\n', { mode: 0o600 });
    await reconcileFirstRunPassword(s.cynode.db, file);
    expect(await exists(file)).toBe(false);
    expect(await pending()).toBe(false);

    await writeFile(file, 'settled-pw-1\n', { mode: 0o600 });
    await reconcileFirstRunPassword(s.cynode.db, file);
    expect(await exists(file)).toBe(true);
    expect(await pending()).toBe(true);
  });
});

describe('first run with CYNODE_ADMIN_PASSWORD', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('pglite');
  });
  afterAll(async () => {
    await s?.close();
  });

  it('has nothing pending, and setting the password answers 409', async () => {
    expect((await s.api.call('/v1/setup')).body).toEqual({ first_run_password_pending: false });
    const res = await post(s.cynode.gatewayUrl, '/v1/setup/admin-password', { password: 'takeover-pw-1' });
    expect(res.status).toBe(409);
    expect((await s.api.call('/v1/auth/login', { body: { handle: 'admin', password: ADMIN_PASSWORD } })).status).toBe(200);
  });
});
