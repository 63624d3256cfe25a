import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

type Signed = Awaited<ReturnType<TestServer['createUser']>>;

const UNKNOWN_ID = '0a1b2c3d-0000-4000-8000-000000000000';

describe.each(DB_KINDS)('roles and role bindings on %s', (kind) => {
  let s: TestServer;
  let adminId: string;
  beforeAll(async () => {
    s = await startTestServer(kind);
    adminId = (await s.api.call('/v1/users/me', { token: s.adminToken })).body.id;
  });
  afterAll(async () => {
    await s?.close();
  });

  const newProject = async (owner: Signed, slug: string): Promise<string> => {
    const res = await s.api.call('/v1/projects', { token: owner.token, body: { slug, display_name: slug } });
    expect(res.status).toBe(201);
    return res.body.id;
  };
  const grant = (token: string, body: Record<string, unknown>) => s.api.call('/v1/role-bindings', { token, body });
  const grantOn = (token: string, projectId: string, subjectId: string, role: string, subjectType = 'user') =>
    grant(token, { subject_type: subjectType, subject_id: subjectId, role, scope_type: 'project', scope_id: projectId });
  const revoke = (token: string, id: string) => s.api.call(`/v1/role-bindings/${id}`, { method: 'DELETE', token });
  const listed = async (token: string, projectId: string) =>
    (await s.api.call('/v1/projects?limit=200', { token })).body.projects.some((p: { id: string }) => p.id === projectId);

  it('lists the roles and what each grants to any signed-in user', async () => {
    const u = await s.createUser('ada');
    const res = await s.api.call('/v1/roles', { token: u.token });
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.body.roles.map((r: { name: string }) => [r.name, r]));
    expect(Object.keys(byName).sort()).toEqual(['admin', 'member', 'operator', 'owner', 'viewer']);
    expect(byName.admin).toMatchObject({ scope_type: 'system', permissions: ['*'] });
    expect(byName.owner.scope_type).toBe('project');
    expect(byName.owner.permissions).toEqual(expect.arrayContaining(['project.read', 'project.update', 'project.delete', 'project.rbac.manage']));
    expect(byName.viewer.permissions).not.toContain('project.update');
    expect(byName.viewer.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('an owner grants viewer: the viewer sees the project but cannot change it; revoking hides it at once', async () => {
    const owner = await s.createUser('bob');
    const viewer = await s.createUser('cleo');
    const pid = await newProject(owner, 'bob-viewer');
    expect((await s.api.call(`/v1/projects/${pid}`, { token: viewer.token })).status).toBe(404);

    const res = await grantOn(owner.token, pid, viewer.id, 'viewer');
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ subject_type: 'user', subject_id: viewer.id, role: 'viewer', scope_type: 'project', scope_id: pid, is_active: true, updated_by: owner.id });

    expect((await s.api.call(`/v1/projects/${pid}`, { token: viewer.token })).status).toBe(200);
    expect(await listed(viewer.token, pid)).toBe(true);
    const rbac = await s.api.call(`/v1/projects/${pid}/rbac`, { token: viewer.token });
    expect(rbac.body.bindings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ binding_id: res.body.id, subject_name: 'cleo', role: 'viewer' }),
        expect.objectContaining({ subject_name: 'bob', role: 'owner' }),
      ]),
    );
    expect((await s.api.call(`/v1/projects/${pid}`, { method: 'PATCH', token: viewer.token, body: { display_name: 'x' } })).status).toBe(403);
    expect((await s.api.call(`/v1/projects/${pid}`, { method: 'DELETE', token: viewer.token })).status).toBe(403);

    // The same grant again changes nothing and answers the existing binding.
    const again = await grantOn(owner.token, pid, viewer.id, 'viewer');
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(res.body.id);

    expect((await revoke(owner.token, res.body.id)).status).toBe(204);
    expect((await s.api.call(`/v1/projects/${pid}`, { token: viewer.token })).status).toBe(404);
    expect(await listed(viewer.token, pid)).toBe(false);
    // Revoking twice is harmless.
    expect((await revoke(owner.token, res.body.id)).status).toBe(204);
    const history = await s.api.call(`/v1/projects/${pid}/rbac?include_inactive=true`, { token: owner.token });
    expect(history.body.bindings.find((b: { binding_id: string }) => b.binding_id === res.body.id)).toMatchObject({ is_active: false });

    const created = await s.api.call(`/v1/audit?action=role_binding_created&resource_id=${res.body.id}`, { token: s.adminToken });
    const revoked = await s.api.call(`/v1/audit?action=role_binding_revoked&resource_id=${res.body.id}`, { token: s.adminToken });
    expect(created.body.events).toEqual([expect.objectContaining({ category: 'admin', actor_id: owner.id, scope_type: 'project', scope_id: pid })]);
    expect(revoked.body.events).toHaveLength(1);
  });

  it('a member works in the project but can neither change it nor grant access to it', async () => {
    const owner = await s.createUser('dan');
    const member = await s.createUser('eli');
    const other = await s.createUser('fay');
    const pid = await newProject(owner, 'dan-member');
    const res = await grantOn(owner.token, pid, member.id, 'member');
    expect(res.status).toBe(201);
    expect((await s.api.call(`/v1/projects/${pid}`, { token: member.token })).status).toBe(200);
    expect(await listed(member.token, pid)).toBe(true);
    expect((await s.api.call(`/v1/projects/${pid}`, { method: 'PATCH', token: member.token, body: { description: 'mine' } })).status).toBe(403);
    expect((await grantOn(member.token, pid, other.id, 'viewer')).status).toBe(403);
    // Nor take access away from anyone.
    expect((await revoke(member.token, res.body.id)).status).toBe(403);
    expect((await s.api.call(`/v1/projects/${pid}`, { token: other.token })).status).toBe(404);
  });

  it('answers 404 to someone granting on a project they cannot see', async () => {
    const owner = await s.createUser('gus');
    const stranger = await s.createUser('hal');
    const pid = await newProject(owner, 'gus-private');
    const res = await grantOn(stranger.token, pid, stranger.id, 'owner');
    expect(res.status).toBe(404);
    expect((await grantOn(stranger.token, UNKNOWN_ID, stranger.id, 'viewer')).status).toBe(404);
    const ownerBinding = (await s.api.call(`/v1/projects/${pid}/rbac`, { token: owner.token })).body.bindings[0].binding_id;
    expect((await revoke(stranger.token, ownerBinding)).status).toBe(404);
    expect((await revoke(stranger.token, UNKNOWN_ID)).status).toBe(404);
  });

  it('only admins manage system-scope bindings and search bindings', async () => {
    const u = await s.createUser('ivy');
    const sys = { subject_type: 'user', subject_id: u.id, role: 'operator', scope_type: 'system' };
    expect((await grant(u.token, sys)).status).toBe(403);
    expect((await grant(u.token, { ...sys, role: 'admin' })).status).toBe(403);
    expect((await s.api.call('/v1/role-bindings', { token: u.token })).status).toBe(403);

    const res = await grant(s.adminToken, sys);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ role: 'operator', scope_type: 'system', scope_id: null });
    expect((await s.api.call('/v1/users/me', { token: u.token })).body.roles).toEqual(['operator']);
    // An operator is still not an admin: a system binding stays out of reach.
    expect((await revoke(u.token, res.body.id)).status).toBe(404);

    const search = await s.api.call(`/v1/role-bindings?subject_id=${u.id}`, { token: s.adminToken });
    expect(search.status).toBe(200);
    expect(search.body.role_bindings.map((b: { role: string; scope_type: string }) => `${b.scope_type}:${b.role}`).sort()).toEqual(['project:owner', 'system:operator']);
    const operators = await s.api.call(`/v1/role-bindings?role=operator&scope_type=system`, { token: s.adminToken });
    expect(operators.body.role_bindings.map((b: { id: string }) => b.id)).toContain(res.body.id);
    expect((await s.api.call('/v1/role-bindings?role=overlord', { token: s.adminToken })).status).toBe(400);

    expect((await revoke(s.adminToken, res.body.id)).status).toBe(204);
    expect((await s.api.call('/v1/users/me', { token: u.token })).body.roles).toEqual([]);
    expect((await s.api.call(`/v1/role-bindings?subject_id=${u.id}&scope_type=system`, { token: s.adminToken })).body.role_bindings).toEqual([]);
    const withRevoked = await s.api.call(`/v1/role-bindings?subject_id=${u.id}&scope_type=system&active_only=false`, { token: s.adminToken });
    expect(withRevoked.body.role_bindings).toEqual([expect.objectContaining({ id: res.body.id, is_active: false })]);
  });

  it('an admin grants on any project; bindings page with next_cursor', async () => {
    const owner = await s.createUser('jon');
    const pid = await newProject(owner, 'jon-paged');
    const members = await Promise.all(['kai', 'lea', 'max'].map((h) => s.createUser(h)));
    for (const m of members) expect((await grantOn(s.adminToken, pid, m.id, 'member')).status).toBe(201);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await s.api.call(`/v1/role-bindings?scope_id=${pid}&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: s.adminToken });
      expect(res.status).toBe(200);
      seen.push(...res.body.role_bindings.map((b: { subject_id: string }) => b.subject_id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(2);
    expect(seen.sort()).toEqual([owner.id, ...members.map((m) => m.id)].sort());
    expect((await s.api.call('/v1/role-bindings?cursor=bogus', { token: s.adminToken })).status).toBe(400);
  });

  it('rejects malformed bindings with 400 and unknown subjects with 404', async () => {
    const owner = await s.createUser('ned');
    const pid = await newProject(owner, 'ned-validation');
    const base = { subject_type: 'user', subject_id: owner.id };
    const cases: Array<Record<string, unknown>> = [
      { ...base, role: 'admin', scope_type: 'system', scope_id: pid },
      { ...base, role: 'viewer', scope_type: 'project' },
      { ...base, role: 'owner', scope_type: 'system' },
      { ...base, role: 'admin', scope_type: 'project', scope_id: pid },
      { ...base, role: 'overlord', scope_type: 'project', scope_id: pid },
      { ...base, role: 'viewer', scope_type: 'galaxy' },
      { ...base, subject_type: 'robot', role: 'viewer', scope_type: 'project', scope_id: pid },
      { ...base, subject_id: 'not-a-uuid', role: 'viewer', scope_type: 'project', scope_id: pid },
      { ...base, role: 'viewer', scope_type: 'project', scope_id: pid, expires: 'never' },
    ];
    for (const body of cases) {
      const res = await grant(s.adminToken, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await grantOn(owner.token, pid, UNKNOWN_ID, 'viewer')).status).toBe(404);
    expect((await grantOn(owner.token, pid, UNKNOWN_ID, 'viewer', 'group')).status).toBe(404);
    expect((await revoke(owner.token, 'not-a-uuid')).status).toBe(400);
    // A role may be named by id as well.
    const viewerRole = (await s.api.call('/v1/roles', { token: owner.token })).body.roles.find((r: { name: string }) => r.name === 'viewer');
    const other = await s.createUser('ola');
    const byId = await grantOn(owner.token, pid, other.id, viewerRole.id);
    expect(byId.status).toBe(201);
    expect(byId.body.role).toBe('viewer');
  });

  it('a project keeps at least one owner', async () => {
    const owner = await s.createUser('pat');
    const second = await s.createUser('raj');
    const pid = await newProject(owner, 'pat-owners');
    const first = (await s.api.call(`/v1/projects/${pid}/rbac`, { token: owner.token })).body.bindings[0].binding_id;
    const last = await revoke(owner.token, first);
    expect(last.status).toBe(409);
    expect(last.body.detail).toContain('last owner');

    const co = await grantOn(owner.token, pid, second.id, 'owner');
    expect(co.status).toBe(201);
    expect((await revoke(second.token, first)).status).toBe(204);
    expect((await s.api.call(`/v1/projects/${pid}`, { token: owner.token })).status).toBe(404);
    expect((await revoke(second.token, co.body.id)).status).toBe(409);
  });

  it('the last admin cannot remove their own admin binding', async () => {
    const mine = await s.api.call(`/v1/role-bindings?subject_id=${adminId}&role=admin`, { token: s.adminToken });
    expect(mine.body.role_bindings).toHaveLength(1);
    const res = await revoke(s.adminToken, mine.body.role_bindings[0].id);
    expect(res.status).toBe(409);
    expect((await s.api.call('/v1/users/me', { token: s.adminToken })).body.roles).toEqual(['admin']);
  });

  it('a group bound to a project gives its members access, and only while they are members', async () => {
    const owner = await s.createUser('sue');
    const member = await s.createUser('tom');
    const outsider = await s.createUser('una');
    const pid = await newProject(owner, 'sue-group');

    const group = await s.api.call('/v1/groups', { token: s.adminToken, body: { slug: 'reviewers', display_name: 'Reviewers' } });
    expect(group.status).toBe(201);
    const gid: string = group.body.id;
    expect((await s.api.call(`/v1/groups/${gid}/members`, { token: s.adminToken, body: { user_id: member.id } })).status).toBe(201);

    const res = await grantOn(owner.token, pid, gid, 'viewer', 'group');
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ subject_type: 'group', subject_id: gid, role: 'viewer' });
    expect((await s.api.call(`/v1/projects/${pid}/rbac`, { token: owner.token })).body.bindings).toEqual(
      expect.arrayContaining([expect.objectContaining({ subject_type: 'group', subject_id: gid, subject_name: 'reviewers' })]),
    );

    expect((await s.api.call(`/v1/projects/${pid}`, { token: member.token })).status).toBe(200);
    expect(await listed(member.token, pid)).toBe(true);
    expect((await s.api.call(`/v1/projects/${pid}`, { method: 'PATCH', token: member.token, body: { display_name: 'x' } })).status).toBe(403);
    expect((await s.api.call(`/v1/projects/${pid}`, { token: outsider.token })).status).toBe(404);
    expect(await listed(outsider.token, pid)).toBe(false);

    expect((await s.api.call(`/v1/groups/${gid}/members/${member.id}`, { method: 'DELETE', token: s.adminToken })).status).toBe(204);
    expect((await s.api.call(`/v1/projects/${pid}`, { token: member.token })).status).toBe(404);
    expect(await listed(member.token, pid)).toBe(false);
  });
});
