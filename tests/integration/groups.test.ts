import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindRole } from '../../server/rbac/bindings';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

describe.each(DB_KINDS)('groups and memberships on %s', (kind) => {
  let s: TestServer;
  const call = (method: string, path: string, body?: unknown, token = s.adminToken) => s.api.call(path, { method, token, body });

  beforeAll(async () => {
    s = await startTestServer(kind);
  });
  afterAll(async () => {
    await s?.close();
  });

  async function newGroup(slug: string) {
    const res = await call('POST', '/v1/groups', { slug, display_name: `Group ${slug}` });
    expect(res.status).toBe(201);
    return res.body;
  }

  it('creates, reads, lists, renames and soft-deletes a group', async () => {
    const g = await newGroup('research');
    expect(g).toMatchObject({ slug: 'research', display_name: 'Group research', is_active: true, member_count: 0 });

    expect((await call('GET', `/v1/groups/${g.id}`)).body).toEqual(g);
    const renamed = await call('PATCH', `/v1/groups/${g.id}`, { display_name: 'Research' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: g.id, slug: 'research', display_name: 'Research' });

    const listed = await call('GET', '/v1/groups');
    expect(listed.body.groups.map((x: any) => x.slug)).toContain('research');

    expect((await call('DELETE', `/v1/groups/${g.id}`)).status).toBe(204);
    const gone = await call('GET', `/v1/groups/${g.id}`);
    expect(gone.status).toBe(200);
    expect(gone.body.is_active).toBe(false);
    expect((await call('GET', '/v1/groups?is_active=true')).body.groups.map((x: any) => x.id)).not.toContain(g.id);
    expect((await call('GET', '/v1/groups?is_active=false')).body.groups.map((x: any) => x.id)).toContain(g.id);
    // Deleting twice is not an error.
    expect((await call('DELETE', `/v1/groups/${g.id}`)).status).toBe(204);

    const back = await call('PATCH', `/v1/groups/${g.id}`, { is_active: true });
    expect(back.body.is_active).toBe(true);

    const actions = await Promise.all(
      ['group_created', 'group_updated', 'group_deleted'].map(async (a) => (await call('GET', `/v1/audit?action=${a}&resource_id=${g.id}`)).body.events),
    );
    expect(actions.map((e) => e.length)).toEqual([1, 2, 1]);
    expect(actions[2][0]).toMatchObject({ category: 'admin', actor_handle: 'admin', resource_type: 'group' });
  });

  it('refuses a taken slug, bad input and unknown groups', async () => {
    await newGroup('ops');
    const dup = await call('POST', '/v1/groups', { slug: 'ops', display_name: 'Other ops' });
    expect(dup.status).toBe(409);
    expect(dup.headers.get('content-type')).toContain('application/problem+json');
    for (const body of [{ slug: 'Ops Team', display_name: 'x' }, { slug: 'ops2' }, { slug: 'ops3', display_name: 'x', owner: 'me' }, { slug: 'ops4', display_name: '' }]) {
      expect((await call('POST', '/v1/groups', body)).status, JSON.stringify(body)).toBe(400);
    }
    expect((await call('GET', `/v1/groups/${UNKNOWN}`)).status).toBe(404);
    expect((await call('PATCH', `/v1/groups/${UNKNOWN}`, { display_name: 'x' })).status).toBe(404);
    expect((await call('DELETE', `/v1/groups/${UNKNOWN}`)).status).toBe(404);
    expect((await call('GET', `/v1/groups/${UNKNOWN}/members`)).status).toBe(404);
    expect((await call('GET', '/v1/groups/nope')).status).toBe(400);
    expect((await call('PATCH', `/v1/groups/${UNKNOWN}`, { slug: 'renamed' })).status).toBe(400);
  });

  it('adds and removes members; removal is soft and re-adding re-activates', async () => {
    const g = await newGroup('builders');
    const u = await s.createUser('ivy');

    const added = await call('POST', `/v1/groups/${g.id}/members`, { user_id: u.id });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ group_id: g.id, user_id: u.id, handle: 'ivy', is_active: true });
    expect(added.body.updated_by).toBe((await call('GET', '/v1/users/me')).body.id);
    // Adding an active member again changes nothing.
    const again = await call('POST', `/v1/groups/${g.id}/members`, { user_id: u.id });
    expect(again.status).toBe(200);
    expect(again.body.created_at).toBe(added.body.created_at);
    expect((await call('GET', `/v1/groups/${g.id}`)).body.member_count).toBe(1);

    const me = await s.api.call('/v1/users/me', { token: u.token });
    expect(me.body.group_ids).toEqual([g.id]);

    expect((await call('DELETE', `/v1/groups/${g.id}/members/${u.id}`)).status).toBe(204);
    expect((await call('DELETE', `/v1/groups/${g.id}/members/${u.id}`)).status).toBe(404);
    const members = await call('GET', `/v1/groups/${g.id}/members`);
    expect(members.body.members).toEqual([expect.objectContaining({ user_id: u.id, is_active: false })]);
    expect((await call('GET', `/v1/groups/${g.id}/members?is_active=true`)).body.members).toEqual([]);
    expect((await call('GET', `/v1/groups/${g.id}`)).body.member_count).toBe(0);

    const readded = await call('POST', `/v1/groups/${g.id}/members`, { user_id: u.id });
    expect(readded.status).toBe(201);
    expect(readded.body).toMatchObject({ is_active: true, created_at: added.body.created_at });
    expect((await call('GET', `/v1/groups/${g.id}/members`)).body.members).toHaveLength(1);

    expect((await call('POST', `/v1/groups/${g.id}/members`, { user_id: UNKNOWN })).status).toBe(404);
    expect((await call('POST', `/v1/groups/${UNKNOWN}/members`, { user_id: u.id })).status).toBe(404);
    expect((await call('DELETE', `/v1/groups/${g.id}/members/${UNKNOWN}`)).status).toBe(404);

    const addedEvents = (await call('GET', `/v1/audit?action=group_member_added&resource_id=${g.id}`)).body.events;
    const removedEvents = (await call('GET', `/v1/audit?action=group_member_removed&resource_id=${g.id}`)).body.events;
    expect(addedEvents).toHaveLength(2);
    expect(removedEvents).toHaveLength(1);
    expect(removedEvents[0]).toMatchObject({ category: 'admin', resource_type: 'group', details: { user_id: u.id } });
  });

  it('pages through members and groups without duplicates', async () => {
    const g = await newGroup('paged');
    for (const h of ['pm-a', 'pm-b', 'pm-c']) {
      const created = await call('POST', '/v1/users', { handle: h, password: `${h}-password` });
      await call('POST', `/v1/groups/${g.id}/members`, { user_id: created.body.id });
    }
    const first = await call('GET', `/v1/groups/${g.id}/members?limit=2`);
    expect(first.body.members.map((m: any) => m.handle)).toEqual(['pm-a', 'pm-b']);
    const second = await call('GET', `/v1/groups/${g.id}/members?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.members.map((m: any) => m.handle)).toEqual(['pm-c']);
    expect(second.body.next_cursor).toBeUndefined();

    const slugs: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await call('GET', `/v1/groups?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      slugs.push(...page.body.groups.map((x: any) => x.slug));
      cursor = page.body.next_cursor;
    } while (cursor && slugs.length < 100);
    expect(slugs).toEqual([...new Set(slugs)].sort());
    expect(slugs).toContain('paged');
  });

  it('a role bound to a group reaches its members, and removal takes effect on the next request', async () => {
    const g = await newGroup('auditors');
    const u = await s.createUser('jack');
    expect((await s.api.call('/v1/audit', { token: u.token })).status).toBe(403);

    const admin = (await call('GET', '/v1/users/me')).body.id;
    await bindRole(s.cynode.db, { subjectType: 'group', subjectId: g.id, role: 'operator', scopeType: 'system', scopeId: null, by: admin });
    // Bound to the group, but jack is not a member yet.
    expect((await s.api.call('/v1/audit', { token: u.token })).status).toBe(403);

    await call('POST', `/v1/groups/${g.id}/members`, { user_id: u.id });
    expect((await s.api.call('/v1/audit', { token: u.token })).status).toBe(200);
    // operator reads the audit trail, but does not manage users.
    expect((await s.api.call('/v1/users', { token: u.token })).status).toBe(403);

    expect((await call('DELETE', `/v1/groups/${g.id}/members/${u.id}`)).status).toBe(204);
    expect((await s.api.call('/v1/audit', { token: u.token })).status).toBe(403);

    // Deleting the group switches the role off for every member as well.
    await call('POST', `/v1/groups/${g.id}/members`, { user_id: u.id });
    expect((await s.api.call('/v1/audit', { token: u.token })).status).toBe(200);
    await call('DELETE', `/v1/groups/${g.id}`);
    expect((await s.api.call('/v1/audit', { token: u.token })).status).toBe(403);
  });

  it('is for admins only', async () => {
    const g = await newGroup('closed');
    const u = await s.createUser('kim');
    expect((await call('GET', '/v1/groups', undefined, u.token)).status).toBe(403);
    expect((await call('POST', '/v1/groups', { slug: 'mine', display_name: 'Mine' }, u.token)).status).toBe(403);
    expect((await call('POST', `/v1/groups/${g.id}/members`, { user_id: u.id }, u.token)).status).toBe(403);
    expect((await call('DELETE', `/v1/groups/${g.id}`, undefined, u.token)).status).toBe(403);
    expect((await call('GET', `/v1/groups/${g.id}/members`)).body.members).toEqual([]);
    expect((await call('GET', `/v1/groups/${g.id}`)).body.is_active).toBe(true);
  });
});
