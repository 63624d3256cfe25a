import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, DB_KINDS, startTestServer, type TestServer } from '../support/harness';

describe.each(DB_KINDS)('sign-in, sessions and API keys on %s', (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind);
  });
  afterAll(async () => {
    await s?.close();
  });

  /** Moves a refresh token's rotation a minute into the past, beyond the grace period for reuse. */
  const rotatedLongAgo = (refreshToken: string) =>
    s.cynode.db.query("UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 minute' WHERE token_hash = $1", [createHash('sha256').update(refreshToken).digest('hex')]);

  it('signs admin in and tells who they are', async () => {
    const tokens = await s.api.login('admin', ADMIN_PASSWORD);
    expect(tokens.access_token).toBeTruthy();
    expect(tokens.refresh_token).toBeTruthy();
    const me = await s.api.call('/v1/users/me', { token: tokens.access_token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ handle: 'admin', is_active: true, roles: ['admin'] });
    expect(me.body.default_project_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers the same 401 for an unknown user, a wrong password and a disabled user', async () => {
    const u = await s.createUser('dora');
    const disable = await s.api.call(`/v1/users/${u.id}/disable`, { method: 'POST', token: s.adminToken });
    expect(disable.status).toBe(200);
    const answers = await Promise.all([
      s.api.call('/v1/auth/login', { body: { handle: 'nobody-here', password: 'whatever-1' } }),
      s.api.call('/v1/auth/login', { body: { handle: 'admin', password: 'wrong-password' } }),
      s.api.call('/v1/auth/login', { body: { handle: 'dora', password: 'dora-password-1' } }),
    ]);
    for (const a of answers) {
      expect(a.status).toBe(401);
      expect(a.body.detail).toBe('Invalid credentials');
      expect(a.headers.get('content-type')).toContain('application/problem+json');
    }
  });

  it('disabling a user kills their access token on the very next request', async () => {
    const u = await s.createUser('eve');
    expect((await s.api.call('/v1/users/me', { token: u.token })).status).toBe(200);
    await s.api.call(`/v1/users/${u.id}/disable`, { method: 'POST', token: s.adminToken });
    expect((await s.api.call('/v1/users/me', { token: u.token })).status).toBe(401);
  });

  it('rotates refresh tokens; presenting a rotated one after the grace period revokes the session', async () => {
    const first = await s.api.login('admin', ADMIN_PASSWORD);
    const r1 = await s.api.call('/v1/auth/refresh', { body: { refresh_token: first.refresh_token } });
    expect(r1.status).toBe(200);
    expect(r1.body.refresh_token).not.toBe(first.refresh_token);
    expect(r1.body.access_token).not.toBe(first.access_token);
    // Refreshing does not end access tokens of the same session.
    expect((await s.api.call('/v1/users/me', { token: first.access_token })).status).toBe(200);

    await rotatedLongAgo(first.refresh_token);
    const reuse = await s.api.call('/v1/auth/refresh', { body: { refresh_token: first.refresh_token } });
    expect(reuse.status).toBe(401);
    // The theft response: the whole session is gone, including the legitimate new tokens.
    expect((await s.api.call('/v1/auth/refresh', { body: { refresh_token: r1.body.refresh_token } })).status).toBe(401);
    expect((await s.api.call('/v1/users/me', { token: r1.body.access_token })).status).toBe(401);

    const audit = await s.api.call('/v1/audit?action=refresh_token_reuse', { token: s.adminToken });
    expect(audit.body.events.length).toBeGreaterThanOrEqual(1);
  });

  it('lets no browser or proxy cache keep an answer that carries a token or a key', async () => {
    const login = await s.api.call('/v1/auth/login', { body: { handle: 'admin', password: ADMIN_PASSWORD } });
    expect(login.status).toBe(200);
    const refresh = await s.api.call('/v1/auth/refresh', { body: { refresh_token: login.body.refresh_token } });
    expect(refresh.status).toBe(200);
    const key = await s.api.call('/v1/api-keys', { token: s.adminToken, body: { name: 'uncached' } });
    expect(key.status).toBe(201);
    for (const answer of [login, refresh, key]) expect(answer.headers.get('cache-control')).toBe('no-store');
  });

  it('tabs refreshing with one token at once each go on with a pair of their own; the session survives', async () => {
    const start = await s.api.login('admin', ADMIN_PASSWORD);
    const tabs = await Promise.all([1, 2, 3].map(() => s.api.call('/v1/auth/refresh', { body: { refresh_token: start.refresh_token } })));
    expect(tabs.map((t) => t.status)).toEqual([200, 200, 200]);
    // Each tab has a pair of its own, and each pair keeps working.
    expect(new Set(tabs.map((t) => t.body.refresh_token)).size).toBe(3);
    for (const tab of tabs) {
      expect((await s.api.call('/v1/users/me', { token: tab.body.access_token })).status).toBe(200);
      expect((await s.api.call('/v1/auth/refresh', { body: { refresh_token: tab.body.refresh_token } })).status).toBe(200);
    }

    // Once the grace period is over, the same token is a stolen copy: the session ends.
    await rotatedLongAgo(start.refresh_token);
    expect((await s.api.call('/v1/auth/refresh', { body: { refresh_token: start.refresh_token } })).status).toBe(401);
    expect((await s.api.call('/v1/users/me', { token: tabs[0]!.body.access_token })).status).toBe(401);
  });

  it('logout ends the session for access and refresh tokens alike', async () => {
    const t = await s.api.login('admin', ADMIN_PASSWORD);
    const out = await s.api.call('/v1/auth/logout', { token: t.access_token, body: { refresh_token: t.refresh_token } });
    expect(out.status).toBe(204);
    expect((await s.api.call('/v1/users/me', { token: t.access_token })).status).toBe(401);
    expect((await s.api.call('/v1/auth/refresh', { body: { refresh_token: t.refresh_token } })).status).toBe(401);
  });

  it('an API key works as a bearer token, is listed without its secret, and stops working when revoked', async () => {
    const created = await s.api.call('/v1/api-keys', { token: s.adminToken, body: { name: 'open-webui' } });
    expect(created.status).toBe(201);
    const { key, id } = created.body;
    expect(key).toMatch(/^cyk_/);

    const me = await s.api.call('/v1/users/me', { token: key });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ handle: 'admin', auth_method: 'api_key' });

    const list = await s.api.call('/v1/api-keys', { token: key });
    expect(list.status).toBe(200);
    expect(list.text).not.toContain(key);
    expect(list.body.api_keys.find((k: { id: string }) => k.id === id)).toMatchObject({ name: 'open-webui', revoked_at: null });

    expect((await s.api.call(`/v1/api-keys/${id}`, { method: 'DELETE', token: s.adminToken })).status).toBe(204);
    expect((await s.api.call('/v1/users/me', { token: key })).status).toBe(401);
  });

  it('an API key can neither create keys nor change the password: 403, sign in to do that', async () => {
    const u = await s.createUser('hugo');
    const key = (await s.api.call('/v1/api-keys', { token: u.token, body: { name: 'script' } })).body.key;

    const child = await s.api.call('/v1/api-keys', { token: key, body: { name: 'would outlive its parent' } });
    expect(child.status).toBe(403);
    expect(child.headers.get('content-type')).toContain('application/problem+json');
    expect(child.body.detail).toMatch(/sign in/);
    const password = await s.api.call('/v1/users/me/password', { token: key, body: { current_password: 'hugo-password-1', new_password: 'taken-over-by-key' } });
    expect(password.status).toBe(403);
    expect(password.body.detail).toMatch(/sign in/);

    // Nothing was created or changed; the key itself still works for everything else.
    const keys = await s.api.call('/v1/api-keys', { token: key });
    expect(keys.body.api_keys.map((k: any) => k.name)).toEqual(['script']);
    expect((await s.api.call('/v1/auth/login', { body: { handle: 'hugo', password: 'hugo-password-1' } })).status).toBe(200);
    const denials = await s.api.call('/v1/audit?action=api_keys.create', { token: s.adminToken });
    expect(denials.body.events).toEqual([expect.objectContaining({ outcome: 'deny', actor_handle: 'hugo' })]);
  });

  it('refuses an expired API key and another user cannot revoke my key', async () => {
    const u = await s.createUser('frank');
    const mine = await s.api.call('/v1/api-keys', { token: s.adminToken, body: { name: 'k' } });
    expect((await s.api.call(`/v1/api-keys/${mine.body.id}`, { method: 'DELETE', token: u.token })).status).toBe(404);
    const past = await s.api.call('/v1/api-keys', { token: s.adminToken, body: { name: 'old', expires_at: '2020-01-01T00:00:00Z' } });
    expect(past.status).toBe(400);
  });

  it('locks a handle out after repeated failures, with Retry-After', async () => {
    await s.createUser('gina');
    let last = 0;
    for (let i = 0; i < 7; i++) {
      last = (await s.api.call('/v1/auth/login', { body: { handle: 'gina', password: 'not-her-password' } })).status;
    }
    expect(last).toBe(429);
    const locked = await s.api.call('/v1/auth/login', { body: { handle: 'gina', password: 'gina-password-1' } });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
