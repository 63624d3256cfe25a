import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

interface Signed {
  id: string;
  token: string;
  defaultProjectId: string;
}

async function signedUpUser(s: TestServer, handle: string): Promise<Signed> {
  const { id, token } = await s.createUser(handle);
  const me = await s.api.call('/v1/users/me', { token });
  return { id, token, defaultProjectId: me.body.default_project_id };
}

describe.each(DB_KINDS)('projects on %s', (kind) => {
  let s: TestServer;
  let adminDefault: string;
  beforeAll(async () => {
    s = await startTestServer(kind);
    adminDefault = (await s.api.call('/v1/users/me', { token: s.adminToken })).body.default_project_id;
  });
  afterAll(async () => {
    await s?.close();
  });

  const ids = (res: { body: { projects: Array<{ id: string }> } }) => res.body.projects.map((p) => p.id);

  it("a user cannot see, change or delete admin's default project", async () => {
    const u = await signedUpUser(s, 'pam');
    expect((await s.api.call(`/v1/projects/${adminDefault}`, { token: u.token })).status).toBe(404);
    const list = await s.api.call('/v1/projects', { token: u.token });
    expect(list.status).toBe(200);
    expect(ids(list)).not.toContain(adminDefault);
    expect(ids(list)).toContain(u.defaultProjectId);

    const patch = await s.api.call(`/v1/projects/${adminDefault}`, { method: 'PATCH', token: u.token, body: { display_name: 'mine now' } });
    expect(patch.status).toBe(404);
    expect(patch.headers.get('content-type')).toContain('application/problem+json');
    expect((await s.api.call(`/v1/projects/${adminDefault}`, { method: 'DELETE', token: u.token })).status).toBe(404);
    expect((await s.api.call(`/v1/projects/${adminDefault}/rbac`, { token: u.token })).status).toBe(404);
    // Not by slug either.
    expect((await s.api.call(`/v1/projects/default-${(await s.api.call('/v1/users/me', { token: s.adminToken })).body.id}`, { token: u.token })).status).toBe(404);
  });

  it('shows a user their own default project as theirs', async () => {
    const u = await signedUpUser(s, 'quinn');
    const own = await s.api.call(`/v1/projects/${u.defaultProjectId}`, { token: u.token });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ project_id: u.defaultProjectId, id: u.defaultProjectId, is_default: true, is_active: true, owner_user_id: u.id, slug: `default-${u.id}` });
  });

  it('admin sees every project', async () => {
    const u = await signedUpUser(s, 'rita');
    const created = await s.api.call('/v1/projects', { token: u.token, body: { slug: 'rita-secret', display_name: 'Rita secret' } });
    expect(created.status).toBe(201);
    const list = await s.api.call('/v1/projects?limit=200', { token: s.adminToken });
    expect(ids(list)).toEqual(expect.arrayContaining([adminDefault, u.defaultProjectId, created.body.id]));
    expect((await s.api.call(`/v1/projects/${created.body.id}`, { token: s.adminToken })).status).toBe(200);
    expect((await s.api.call('/v1/projects/rita-secret', { token: s.adminToken })).body.id).toBe(created.body.id);
  });

  it('creating a project makes the creator its owner, and is audited', async () => {
    const u = await signedUpUser(s, 'sam');
    const res = await s.api.call('/v1/projects', { token: u.token, body: { slug: 'apollo', display_name: 'Apollo', description: 'Moon shots' } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ slug: 'apollo', display_name: 'Apollo', description: 'Moon shots', is_active: true, is_default: false, updated_by: u.id });
    expect(res.body.project_id).toBe(res.body.id);
    expect(res.body).not.toHaveProperty('owner_user_id');

    const rbac = await s.api.call(`/v1/projects/${res.body.id}/rbac`, { token: u.token });
    expect(rbac.status).toBe(200);
    expect(rbac.body.bindings).toEqual([expect.objectContaining({ subject_type: 'user', subject_id: u.id, subject_name: 'sam', role: 'owner', is_active: true })]);
    expect(rbac.body.bindings[0].binding_id).toMatch(/^[0-9a-f-]{36}$/);

    const bySlug = await s.api.call('/v1/projects/apollo', { token: u.token });
    expect(bySlug.body.id).toBe(res.body.id);

    const audit = await s.api.call(`/v1/audit?action=project_created&resource_id=${res.body.id}`, { token: s.adminToken });
    expect(audit.body.events).toEqual([expect.objectContaining({ category: 'admin', actor_id: u.id, resource_type: 'project' })]);
  });

  it('refuses reserved, malformed and duplicate slugs', async () => {
    const u = await signedUpUser(s, 'tess');
    const post = (body: unknown) => s.api.call('/v1/projects', { token: u.token, body });
    expect((await post({ slug: 'default-mine', display_name: 'x' })).status).toBe(400);
    expect((await post({ slug: 'Has Spaces', display_name: 'x' })).status).toBe(400);
    expect((await post({ slug: '0a1b2c3d-0000-4000-8000-000000000000', display_name: 'x' })).status).toBe(400);
    expect((await post({ slug: 'okay', display_name: '' })).status).toBe(400);
    expect((await post({ slug: 'okay', display_name: 'x', owner: 'me' })).status).toBe(400);
    expect((await post({ display_name: 'x' })).status).toBe(400);
    expect((await post({ slug: 'hermes', display_name: 'Hermes' })).status).toBe(201);
    const dup = await post({ slug: 'hermes', display_name: 'Hermes again' });
    expect(dup.status).toBe(409);
    expect(dup.body.detail).toContain('hermes');
  });

  it('owners change a project; an empty description clears it', async () => {
    const u = await signedUpUser(s, 'uma');
    const p = (await s.api.call('/v1/projects', { token: u.token, body: { slug: 'gemini', display_name: 'Gemini', description: 'twins' } })).body;
    const res = await s.api.call(`/v1/projects/${p.id}`, { method: 'PATCH', token: u.token, body: { display_name: 'Gemini II', description: '' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: p.id, display_name: 'Gemini II', description: null, updated_by: u.id });
    expect((await s.api.call(`/v1/projects/${p.id}`, { token: u.token })).body.display_name).toBe('Gemini II');
    expect((await s.api.call(`/v1/projects/${p.id}`, { method: 'PATCH', token: u.token, body: { slug: 'renamed' } })).status).toBe(400);
    expect((await s.api.call(`/v1/projects/${p.id}`, { method: 'PATCH', token: u.token, body: { is_active: 'no' } })).status).toBe(400);
    const audit = await s.api.call(`/v1/audit?action=project_updated&resource_id=${p.id}`, { token: s.adminToken });
    expect(audit.body.events[0].details).toEqual({ changed: ['display_name', 'description'] });
  });

  it('deletes softly, and never a default project', async () => {
    const u = await signedUpUser(s, 'vic');
    const own = await s.api.call(`/v1/projects/${u.defaultProjectId}`, { method: 'DELETE', token: u.token });
    expect(own.status).toBe(409);
    expect((await s.api.call(`/v1/projects/${u.defaultProjectId}`, { method: 'PATCH', token: u.token, body: { is_active: false } })).status).toBe(409);
    expect((await s.api.call(`/v1/projects/${adminDefault}`, { method: 'DELETE', token: s.adminToken })).status).toBe(409);

    const p = (await s.api.call('/v1/projects', { token: u.token, body: { slug: 'mercury', display_name: 'Mercury' } })).body;
    const del = await s.api.call(`/v1/projects/${p.id}`, { method: 'DELETE', token: u.token });
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ project_id: p.id, deleted: true });

    expect(ids(await s.api.call('/v1/projects', { token: u.token }))).not.toContain(p.id);
    const all = await s.api.call('/v1/projects?active_only=false', { token: u.token });
    expect(all.body.projects.find((x: { id: string }) => x.id === p.id)).toMatchObject({ is_active: false });
    expect((await s.api.call(`/v1/projects/${p.id}`, { token: u.token })).body.is_active).toBe(false);

    // Bringing it back is a change like any other.
    const back = await s.api.call(`/v1/projects/${p.id}`, { method: 'PATCH', token: u.token, body: { is_active: true } });
    expect(back.body.is_active).toBe(true);
    const audit = await s.api.call(`/v1/audit?action=project_deleted&resource_id=${p.id}`, { token: s.adminToken });
    expect(audit.body.events).toHaveLength(1);
  });

  it('filters by text, case-insensitively and literally', async () => {
    const u = await signedUpUser(s, 'wes');
    const mk = (slug: string, display_name: string, description?: string) => s.api.call('/v1/projects', { token: u.token, body: { slug, display_name, description } });
    await mk('wes-alpha', 'Alpha Centauri');
    await mk('wes-beta', 'Beta', 'next to ALPHA');
    await mk('wes-gamma', 'Gamma', '100% done');
    const slugs = async (query: string) => (await s.api.call(`/v1/projects?${query}`, { token: u.token })).body.projects.map((p: { slug: string }) => p.slug);
    expect(await slugs('q=alpha')).toEqual(['wes-alpha', 'wes-beta']);
    expect(await slugs('q=GAMM')).toEqual(['wes-gamma']);
    expect(await slugs(`q=${encodeURIComponent('0%')}`)).toEqual(['wes-gamma']);
    expect(await slugs(`q=${encodeURIComponent('_')}`)).toEqual([]);
    await s.api.call('/v1/projects/wes-gamma', { method: 'DELETE', token: u.token });
    expect(await slugs('q=gamma')).toEqual([]);
    expect(await slugs('q=gamma&active_only=false')).toEqual(['wes-gamma']);
  });

  it('pages through projects with next_cursor', async () => {
    const u = await signedUpUser(s, 'xena');
    for (const n of [1, 2, 3, 4, 5]) {
      expect((await s.api.call('/v1/projects', { token: u.token, body: { slug: `xena-${n}`, display_name: `Xena ${n}` } })).status).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await s.api.call(`/v1/projects?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: u.token });
      expect(res.status).toBe(200);
      expect(res.body.projects.length).toBeLessThanOrEqual(2);
      seen.push(...ids(res));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    // Five projects plus the default one.
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(6);
    expect(seen).toContain(u.defaultProjectId);

    expect((await s.api.call('/v1/projects?cursor=not-a-cursor', { token: u.token })).status).toBe(400);
    expect((await s.api.call('/v1/projects?limit=0', { token: u.token })).status).toBe(400);
    expect((await s.api.call('/v1/projects?limit=201', { token: u.token })).status).toBe(400);
    expect((await s.api.call('/v1/projects?unknown=1', { token: u.token })).status).toBe(400);
  });

  it('documents the project, role and binding routes in the OpenAPI document', async () => {
    const doc = await s.api.call('/v1/openapi.json', { token: s.adminToken });
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/projects', '/v1/projects/{id}', '/v1/projects/{id}/rbac', '/v1/roles', '/v1/role-bindings', '/v1/role-bindings/{id}']));
    expect(doc.body.paths['/v1/projects'].post.tags).toContain('projects');
  });

  it('needs a credential', async () => {
    expect((await s.api.call('/v1/projects')).status).toBe(401);
    expect((await s.api.call('/v1/projects', { body: { slug: 'anon', display_name: 'Anon' } })).status).toBe(401);
  });
});
