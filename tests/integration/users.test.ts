import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe.each(DB_KINDS)('admin user management on %s', (kind) => {
  let s: TestServer;
  const post = (path: string, body?: unknown, token = s.adminToken) => s.api.call(path, { method: 'POST', token, body });

  beforeAll(async () => {
    s = await startTestServer(kind);
  });
  afterAll(async () => {
    await s?.close();
  });

  async function adminId(): Promise<string> {
    return (await s.api.call('/v1/users/me', { token: s.adminToken })).body.id;
  }

  async function auditFor(action: string, userId: string) {
    const res = await s.api.call(`/v1/audit?action=${action}&resource_id=${userId}`, { token: s.adminToken });
    expect(res.status).toBe(200);
    return res.body.events as any[];
  }

  it('creates a user who can sign in at once and owns a default project', async () => {
    const created = await post('/v1/users', { handle: 'alice', password: 'alice-password-1', email: 'Alice@Example.org', display_name: 'Alice' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ handle: 'alice', email: 'alice@example.org', display_name: 'Alice', is_active: true, is_system: false });
    expect(created.body.id).toMatch(UUID);
    expect(created.body.default_project_id).toMatch(UUID);
    expect(created.text).not.toMatch(/hash|argon|alice-password-1/i);

    const tokens = await s.api.login('alice', 'alice-password-1');
    const me = await s.api.call('/v1/users/me', { token: tokens.access_token });
    expect(me.body).toMatchObject({ id: created.body.id, default_project_id: created.body.default_project_id });

    const got = await s.api.call(`/v1/users/${created.body.id}`, { token: s.adminToken });
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);
  });

  it('refuses every admin route to a user without the admin role', async () => {
    const u = await s.createUser('bob');
    const other = await s.createUser('bob-other');
    expect((await s.api.call('/v1/users', { token: u.token })).status).toBe(403);
    expect((await post('/v1/users', { handle: 'mallory', password: 'mallory-password-1' }, u.token)).status).toBe(403);
    expect((await s.api.call(`/v1/users/${other.id}`, { token: u.token })).status).toBe(403);
    expect((await post(`/v1/users/${other.id}/disable`, undefined, u.token)).status).toBe(403);
    expect((await post(`/v1/users/${other.id}/reset_password`, { new_password: 'taken-over-1' }, u.token)).status).toBe(403);
    expect((await s.api.call(`/v1/users/${other.id}`, { method: 'PATCH', token: u.token, body: { display_name: 'x' } })).status).toBe(403);
    // Nothing happened: the other user still signs in with their password.
    await s.api.login('bob-other', 'bob-other-password-1');
    expect((await s.api.call('/v1/users/me', { token: other.token })).status).toBe(200);
    const denials = await s.api.call(`/v1/audit?category=access&outcome=deny&actor_id=${u.id}`, { token: s.adminToken });
    expect(denials.body.events.length).toBeGreaterThanOrEqual(1);
  });

  it('refuses the reserved handle, taken handles and emails, and bad input', async () => {
    const reserved = await post('/v1/users', { handle: 'system', password: 'system-password-1' });
    expect(reserved.status).toBe(400);
    expect(reserved.body.detail).toMatch(/reserved/);

    await post('/v1/users', { handle: 'carol', password: 'carol-password-1', email: 'carol@example.org' });
    const dupHandle = await post('/v1/users', { handle: 'carol', password: 'carol-password-2' });
    expect(dupHandle.status).toBe(409);
    expect(dupHandle.headers.get('content-type')).toContain('application/problem+json');
    const dupEmail = await post('/v1/users', { handle: 'carol2', password: 'carol-password-2', email: 'CAROL@example.org' });
    expect(dupEmail.status).toBe(409);

    const bad = [
      { handle: 'Carol', password: 'carol-password-1' },
      { handle: 'dan', password: 'short' },
      { handle: 'dan', password: 'dan-password-1', email: 'not-an-email' },
      { handle: 'dan', password: 'dan-password-1', is_admin: true },
      { password: 'dan-password-1' },
    ];
    for (const body of bad) {
      const res = await post('/v1/users', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    // None of the refused attempts left a user behind.
    const list = await s.api.call('/v1/users?limit=200', { token: s.adminToken });
    expect(list.body.users.map((u: any) => u.handle)).not.toContain('dan');
    expect(list.body.users.filter((u: any) => u.handle === 'carol')).toHaveLength(1);
  });

  it('answers 404 for an unknown user and 400 for a malformed id', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await s.api.call(`/v1/users/${unknown}`, { token: s.adminToken })).status).toBe(404);
    expect((await post(`/v1/users/${unknown}/disable`)).status).toBe(404);
    expect((await post(`/v1/users/${unknown}/enable`)).status).toBe(404);
    expect((await post(`/v1/users/${unknown}/revoke_sessions`)).status).toBe(404);
    expect((await post(`/v1/users/${unknown}/reset_password`, { new_password: 'whatever-123' })).status).toBe(404);
    expect((await s.api.call('/v1/users/not-a-uuid', { token: s.adminToken })).status).toBe(400);
  });

  it('updates email and display name but never the handle', async () => {
    const u = await s.createUser('erin');
    await post('/v1/users', { handle: 'erin-twin', password: 'erin-twin-password', email: 'twin@example.org' });
    const patch = (body: unknown) => s.api.call(`/v1/users/${u.id}`, { method: 'PATCH', token: s.adminToken, body });

    const changed = await patch({ email: 'erin@example.org', display_name: 'Erin E.' });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ handle: 'erin', email: 'erin@example.org', display_name: 'Erin E.' });
    expect((await patch({ email: 'twin@example.org' })).status).toBe(409);
    expect((await patch({ handle: 'system' })).status).toBe(400);
    expect((await patch({ handle: 'erin2' })).status).toBe(400);

    const cleared = await patch({ display_name: null });
    expect(cleared.body).toMatchObject({ handle: 'erin', email: 'erin@example.org', display_name: null });
    const audit = await auditFor('user_updated', u.id);
    expect(audit.length).toBe(2);
    expect(audit[0]).toMatchObject({ category: 'admin', actor_handle: 'admin', resource_type: 'user', details: { fields: ['display_name'] } });
  });

  it('disabling kills the access token on the next request and refuses sign-in; enabling lets them back', async () => {
    const u = await s.createUser('frank');
    expect((await s.api.call('/v1/users/me', { token: u.token })).status).toBe(200);

    const disabled = await post(`/v1/users/${u.id}/disable`);
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ id: u.id, is_active: false });
    expect((await s.api.call('/v1/users/me', { token: u.token })).status).toBe(401);
    expect((await s.api.call('/v1/auth/refresh', { body: { refresh_token: u.refresh } })).status).toBe(401);
    const login = await s.api.call('/v1/auth/login', { body: { handle: 'frank', password: 'frank-password-1' } });
    expect(login.status).toBe(401);
    expect(login.body.detail).toBe('Invalid credentials');

    const inactive = await s.api.call('/v1/users?is_active=false', { token: s.adminToken });
    expect(inactive.body.users.map((x: any) => x.handle)).toContain('frank');
    expect(inactive.body.users.every((x: any) => x.is_active === false)).toBe(true);

    const enabled = await post(`/v1/users/${u.id}/enable`);
    expect(enabled.status).toBe(200);
    expect(enabled.body.is_active).toBe(true);
    // The old session stays dead; a new sign-in works.
    expect((await s.api.call('/v1/users/me', { token: u.token })).status).toBe(401);
    const again = await s.api.login('frank', 'frank-password-1');
    expect((await s.api.call('/v1/users/me', { token: again.access_token })).status).toBe(200);

    const [disabledEvent] = await auditFor('user_disabled', u.id);
    expect(disabledEvent).toMatchObject({ category: 'admin', outcome: 'success', actor_handle: 'admin', resource_type: 'user', resource_id: u.id });
    expect(disabledEvent.request_id).toBeTruthy();
    expect((await auditFor('user_enabled', u.id)).length).toBe(1);
    expect((await auditFor('user_created', u.id)).length).toBe(1);
  });

  it('disabling revokes the user’s API keys for good: enabling them again does not bring the keys back', async () => {
    const u = await s.createUser('fiona');
    const keys = await Promise.all(['laptop', 'ci'].map(async (name) => (await s.api.call('/v1/api-keys', { token: u.token, body: { name } })).body.key as string));
    for (const key of keys) expect((await s.api.call('/v1/users/me', { token: key })).status).toBe(200);

    expect((await post(`/v1/users/${u.id}/disable`)).status).toBe(200);
    expect((await post(`/v1/users/${u.id}/enable`)).status).toBe(200);
    for (const key of keys) expect((await s.api.call('/v1/users/me', { token: key })).status).toBe(401);
    // They see why: both keys are listed as revoked, and new ones can be made.
    const back = await s.api.login('fiona', 'fiona-password-1');
    const listed = (await s.api.call('/v1/api-keys', { token: back.access_token })).body.api_keys;
    expect(listed).toHaveLength(2);
    expect(listed.every((k: any) => k.revoked_at !== null)).toBe(true);
    const fresh = await s.api.call('/v1/api-keys', { token: back.access_token, body: { name: 'new laptop' } });
    expect((await s.api.call('/v1/users/me', { token: fresh.body.key })).status).toBe(200);

    const [event] = await auditFor('user_disabled', u.id);
    expect(event.details).toMatchObject({ api_keys_revoked: 2 });
  });

  it('lets nobody disable the system user or their own account', async () => {
    const self = await post(`/v1/users/${await adminId()}/disable`);
    expect(self.status).toBe(409);
    expect(self.body.detail).toMatch(/own account/);

    const all = await s.api.call('/v1/users?limit=200', { token: s.adminToken });
    const system = all.body.users.find((u: any) => u.handle === 'system');
    expect(system).toMatchObject({ is_system: true, is_active: true });
    const sys = await post(`/v1/users/${system.id}/disable`);
    expect(sys.status).toBe(409);
    expect(sys.body.detail).toMatch(/system user/);
    expect((await post(`/v1/users/${system.id}/reset_password`, { new_password: 'system-password-1' })).status).toBe(409);

    // The admin is still active and signed in.
    expect((await s.api.call('/v1/users/me', { token: s.adminToken })).body.is_active).toBe(true);
  });

  it('reset_password: the old password and old sessions stop working, the new password works', async () => {
    const u = await s.createUser('gwen');
    const reset = await post(`/v1/users/${u.id}/reset_password`, { new_password: 'gwen-new-password' });
    expect(reset.status).toBe(204);
    expect((await s.api.call('/v1/users/me', { token: u.token })).status).toBe(401);
    expect((await s.api.call('/v1/auth/login', { body: { handle: 'gwen', password: 'gwen-password-1' } })).status).toBe(401);
    const fresh = await s.api.login('gwen', 'gwen-new-password');
    expect((await s.api.call('/v1/users/me', { token: fresh.access_token })).status).toBe(200);
    expect((await post(`/v1/users/${u.id}/reset_password`, { new_password: 'short' })).status).toBe(400);

    const [event] = await auditFor('password_reset', u.id);
    expect(event).toMatchObject({ category: 'admin', actor_handle: 'admin', resource_type: 'user' });
    expect(JSON.stringify(event)).not.toContain('gwen-new-password');
  });

  it('revoke_sessions ends every session of the user', async () => {
    const u = await s.createUser('hank');
    const second = await s.api.login('hank', 'hank-password-1');
    expect((await post(`/v1/users/${u.id}/revoke_sessions`)).status).toBe(204);
    expect((await s.api.call('/v1/users/me', { token: u.token })).status).toBe(401);
    expect((await s.api.call('/v1/users/me', { token: second.access_token })).status).toBe(401);
    expect((await s.api.call('/v1/auth/refresh', { body: { refresh_token: second.refresh_token } })).status).toBe(401);
    // Not a disable: they can sign in again.
    await s.api.login('hank', 'hank-password-1');
    const [event] = await auditFor('sessions_revoked', u.id);
    expect(event).toMatchObject({ category: 'admin', resource_type: 'user', details: { sessions_revoked: 2 } });
  });

  it('pages through all users by handle with next_cursor, without duplicates', async () => {
    for (const h of ['page-a', 'page-b', 'page-c', 'page-d', 'page-e']) {
      expect((await post('/v1/users', { handle: h, password: `${h}-password` })).status).toBe(201);
    }
    const everyone = (await s.api.call('/v1/users?limit=200', { token: s.adminToken })).body.users.map((u: any) => u.handle);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await s.api.call(`/v1/users?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: s.adminToken });
      expect(res.status).toBe(200);
      expect(res.body.users.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.users.map((u: any) => u.handle));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor && pages < 100);
    expect(seen).toEqual(everyone);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining(['admin', 'system', 'page-a', 'page-e']));

    expect((await s.api.call('/v1/users?cursor=garbage', { token: s.adminToken })).status).toBe(400);
    expect((await s.api.call('/v1/users?limit=0', { token: s.adminToken })).status).toBe(400);
    expect((await s.api.call('/v1/users?limit=201', { token: s.adminToken })).status).toBe(400);
  });
});
