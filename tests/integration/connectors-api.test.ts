import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

// The connectors API without running any operation: catalog, install and validation,
// visibility between users and groups, management audit and the egress allow list.

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

describe.each(DB_KINDS)('connectors API on %s', (kind) => {
  let s: TestServer;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  const call = (method: string, path: string, body?: unknown, token = alice.token) => s.api.call(path, { method, token, body });

  beforeAll(async () => {
    s = await startTestServer(kind);
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
  });
  afterAll(async () => {
    await s?.close();
  });

  const install = async (body: Record<string, unknown>, token = alice.token) => {
    const res = await call('POST', '/v1/connectors', body, token);
    expect(res.status, res.text).toBe(201);
    return res.body;
  };

  it('lists every type in the catalog with its operations, schemas, limits and retry policy', async () => {
    const res = await call('GET', '/v1/connectors/catalog');
    expect(res.status).toBe(200);
    const types = res.body.types.map((t: any) => t.type).sort();
    expect(types).toEqual(expect.arrayContaining(['discord', 'github', 'http', 'imap', 'mattermost', 'slack', 'smtp']));
    const http = res.body.types.find((t: any) => t.type === 'http');
    expect(http.config_schema).toMatchObject({ type: 'object' });
    expect(http.credential_types).toContain('bearer_token');
    const request = http.operations.find((o: any) => o.name === 'request');
    expect(request).toMatchObject({ execution: 'sync', request_schema: { type: 'object' }, result_schema: { type: 'object' } });
    expect(request.timeout_ms).toBeGreaterThan(0);
    expect(request.retry).toMatchObject({ attempts: expect.any(Number), backoff_ms: expect.any(Number) });
    expect((await s.api.call('/v1/connectors/catalog')).status).toBe(401);
  });

  it('refuses bad input with a problem document, before anything is stored', async () => {
    const unknownType = await call('POST', '/v1/connectors', { type: 'fax', name: 'f', config: {} });
    expect(unknownType.status).toBe(400);
    expect(unknownType.headers.get('content-type')).toContain('application/problem+json');
    expect(unknownType.body).toMatchObject({ status: 400, code: 'validation_error' });

    const badConfig = await call('POST', '/v1/connectors', { type: 'http', name: 'h', config: { base_url: 42 } });
    expect(badConfig.status).toBe(400);
    expect(badConfig.body.detail).toMatch(/configuration is not valid/);

    const secretInConfig = await call('POST', '/v1/connectors', { type: 'http', name: 'h', config: { base_url: 'https://api.example.com', password: 'hunter2-is-my-password' } });
    expect(secretInConfig.status).toBe(400);
    expect(secretInConfig.text).not.toContain('hunter2');

    const extraField = await call('POST', '/v1/connectors', { type: 'http', name: 'h', config: {}, owner: 'x' });
    expect(extraField.status).toBe(400);
    expect((await call('GET', '/v1/connectors')).body.connectors).toHaveLength(0);
  });

  it('installs, reads, lists, renames, reconfigures, disables, enables and deletes, auditing each change', async () => {
    // A type that needs a credential waits in `provisioning` until it has one.
    const created = await install({ type: 'github', name: 'Status API', config: { owner: 'cynode', repo: 'status' } });
    expect(created).toMatchObject({ type: 'github', name: 'Status API', owner: { type: 'user', id: alice.id }, project_id: null, status: 'provisioning', last_error: null });
    expect((await call('GET', `/v1/connectors/${created.id}`)).body).toEqual(created);
    expect((await call('GET', '/v1/connectors')).body.connectors.map((c: any) => c.id)).toContain(created.id);

    const renamed = await call('PATCH', `/v1/connectors/${created.id}`, { name: 'Status', config: { owner: 'cynode', repo: 'status-v2' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Status', config: { owner: 'cynode', repo: 'status-v2' } });
    expect((await call('PATCH', `/v1/connectors/${created.id}`, { config: { owner: 'cynode' } })).status).toBe(400);

    expect((await call('POST', `/v1/connectors/${created.id}/disable`)).body.status).toBe('disabled');
    // No credential yet: enabling leaves it waiting for one.
    expect((await call('POST', `/v1/connectors/${created.id}/enable`)).body.status).toBe('provisioning');

    expect((await call('DELETE', `/v1/connectors/${created.id}`)).status).toBe(204);
    expect((await call('GET', `/v1/connectors/${created.id}`)).status).toBe(404);
    expect((await call('DELETE', `/v1/connectors/${created.id}`)).status).toBe(404);

    const audit = await s.cynode.db.query<{ action: string; actor_id: string; details: any }>(
      `SELECT action, actor_id, details FROM audit_events WHERE resource_type = 'connector' AND resource_id = $1 ORDER BY seq`,
      [created.id],
    );
    expect(audit.map((a) => a.action)).toEqual(['connector_installed', 'connector_updated', 'connector_disabled', 'connector_enabled', 'connector_deleted']);
    expect(audit.every((a) => a.actor_id === alice.id)).toBe(true);
    expect(audit[1]!.details).toEqual({ fields: ['name', 'config'] });
  });

  it("hides one user's instance from another: 404 for reading, changing, credentials, history and invoking", async () => {
    const mine = await install({ type: 'http', name: 'Mine', config: { base_url: 'https://mine.example.com' } });
    const as = (method: string, path: string, body?: unknown) => call(method, path, body, bob.token);
    expect((await as('GET', `/v1/connectors/${mine.id}`)).status).toBe(404);
    expect((await as('PATCH', `/v1/connectors/${mine.id}`, { name: 'x' })).status).toBe(404);
    expect((await as('POST', `/v1/connectors/${mine.id}/disable`)).status).toBe(404);
    expect((await as('DELETE', `/v1/connectors/${mine.id}`)).status).toBe(404);
    expect((await as('GET', `/v1/connectors/${mine.id}/credentials`)).status).toBe(404);
    expect((await as('POST', `/v1/connectors/${mine.id}/credentials`, { type: 'bearer_token', secret: { token: 't' } })).status).toBe(404);
    expect((await as('GET', `/v1/connectors/${mine.id}/operations`)).status).toBe(404);
    expect((await as('POST', `/v1/connectors/${mine.id}/operations/request`, { params: { method: 'GET', path: 'x' } })).status).toBe(404);
    expect((await as('GET', '/v1/connectors')).body.connectors.map((c: any) => c.id)).not.toContain(mine.id);
    expect((await as('GET', `/v1/connectors/${UNKNOWN}`)).status).toBe(404);
    // The admin sees every instance.
    expect((await call('GET', `/v1/connectors/${mine.id}`, undefined, s.adminToken)).status).toBe(200);
    // …and lists them all, page by page (the console's list; it once answered 500 for admins).
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await call('GET', `/v1/connectors?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, undefined, s.adminToken);
      expect(page.status, page.text).toBe(200);
      seen.push(...page.body.connectors.map((c: any) => c.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toContain(mine.id);
  });

  it('shares a group-owned instance with the active members of its group, and only them', async () => {
    const group = (await call('POST', '/v1/groups', { slug: 'ops', display_name: 'Ops' }, s.adminToken)).body;
    expect((await call('POST', `/v1/groups/${group.id}/members`, { user_id: bob.id }, s.adminToken)).status).toBe(201);
    // Installing for a group is left to admins by the default rules.
    const refused = await call('POST', '/v1/connectors', { type: 'http', name: 'Ops API', config: { base_url: 'https://ops.example.com' }, owner_group_id: group.id }, bob.token);
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('policy_denied');
    const shared = await install({ type: 'http', name: 'Ops API', config: { base_url: 'https://ops.example.com' }, owner_group_id: group.id }, s.adminToken);
    expect(shared.owner).toEqual({ type: 'group', id: group.id });
    expect((await call('GET', `/v1/connectors/${shared.id}`, undefined, bob.token)).status).toBe(200);
    expect((await call('GET', '/v1/connectors', undefined, bob.token)).body.connectors.map((c: any) => c.id)).toContain(shared.id);
    expect((await call('GET', `/v1/connectors/${shared.id}`)).status).toBe(404);
    // A member sees it but may not manage it unless a rule says so.
    const manage = await call('PATCH', `/v1/connectors/${shared.id}`, { name: 'mine now' }, bob.token);
    expect(manage.status).toBe(403);
    expect(manage.body.code).toBe('policy_denied');
    // Removed from the group: gone.
    expect((await call('DELETE', `/v1/groups/${group.id}/members/${bob.id}`, undefined, s.adminToken)).status).toBe(204);
    expect((await call('GET', `/v1/connectors/${shared.id}`, undefined, bob.token)).status).toBe(404);
    const decisions = await s.cynode.db.query<{ action: string; decision: string; subject_user_id: string }>(
      `SELECT action, decision, subject_user_id FROM access_audit WHERE action LIKE 'connector.%' ORDER BY seq`,
    );
    expect(decisions).toEqual(
      expect.arrayContaining([
        { action: 'connector.install', decision: 'deny', subject_user_id: bob.id },
        { action: 'connector.install', decision: 'allow', subject_user_id: expect.any(String) },
        { action: 'connector.manage', decision: 'deny', subject_user_id: bob.id },
      ]),
    );
  });

  it('checks operation names and params against the catalog before anything runs', async () => {
    const c = await install({ type: 'github', name: 'Checks', config: { owner: 'cynode', repo: 'checks' } });
    expect((await call('POST', `/v1/connectors/${c.id}/operations/explode`, { params: {} })).status).toBe(404);
    const bad = await call('POST', `/v1/connectors/${c.id}/operations/create_issue`, { params: { body: 'no title' } });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('validation_error');
    // Valid, but the instance has no credential yet.
    const waiting = await call('POST', `/v1/connectors/${c.id}/operations/create_issue`, { params: { title: 'x' } });
    expect(waiting.status).toBe(409);
    expect(waiting.body.code).toBe('provisioning');
    const history = await call('GET', `/v1/connectors/${c.id}/operations`);
    expect(history.body.operations).toHaveLength(1);
    expect(history.body.operations[0]).toMatchObject({ operation: 'create_issue', decision: 'allow', outcome: 'failure', failure_class: 'provisioning', subject_id: alice.id });
    // A credential of a type the connector does not take, or one failing its schema.
    expect((await call('POST', `/v1/connectors/${c.id}/credentials`, { type: 'password', secret: { password: 'pw' } })).status).toBe(400);
    const badSecret = await call('POST', `/v1/connectors/${c.id}/credentials`, { type: 'bearer_token', secret: { token: 'line\r\nbreak-secret' } });
    expect(badSecret.status).toBe(400);
    expect(badSecret.text).not.toContain('break-secret');
  });

  it('lets admins alone read and replace the egress allow list, each entry checked and the change audited', async () => {
    expect((await call('GET', '/v1/connectors/egress-allow')).status).toBe(403);
    expect((await call('PUT', '/v1/connectors/egress-allow', { entries: ['example.com'] })).status).toBe(403);
    const empty = await call('GET', '/v1/connectors/egress-allow', undefined, s.adminToken);
    expect(empty.body.entries).toEqual([]);
    const bad = await call('PUT', '/v1/connectors/egress-allow', { entries: ['10.0.0.0/99'] }, s.adminToken);
    expect(bad.status).toBe(400);
    const set = await call('PUT', '/v1/connectors/egress-allow', { entries: ['API.example.com', '*.corp.example', '10.1.0.0/16'] }, s.adminToken);
    expect(set.status).toBe(200);
    expect(set.body.entries).toEqual(['api.example.com', '*.corp.example', '10.1.0.0/16']);
    const audit = await s.cynode.db.query<{ details: any }>(`SELECT details FROM audit_events WHERE action = 'connector_egress_allow_changed'`);
    expect(audit).toHaveLength(1);
    expect(audit[0]!.details.added).toEqual(['api.example.com', '*.corp.example', '10.1.0.0/16']);
  });
});
