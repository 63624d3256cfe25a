import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/* Node administration on the gateway, with nodes joined over HTTP. */

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

function capability(slug: string) {
  return {
    version: 1,
    reported_at: new Date().toISOString(),
    node: { node_slug: slug, name: `Node ${slug}`, labels: ['gpu-box', 'test'] },
    platform: { os: 'linux', arch: 'arm64', distro: 'debian' },
    compute: { cpu_cores: 8, ram_mb: 16384 },
    container_runtime: { runtime: 'podman', version: '4.9' },
    gpu: { present: true, devices: [{ vendor: 'nvidia' }] },
    sandbox: { supported: true, max_concurrency: 2 },
    inference: { supported: true, running: true, available_models: ['qwen3:8b', 'llama3:8b'] },
    worker_api: { base_url: 'http://10.0.0.7:12090' },
    extra_fact: { kept: true },
  };
}

/** What a node sends to register: the join key, its own secret (one per name here) and its facts. */
const registration = (psk: string, slug: string) => ({ psk, node_secret: `the-own-secret-of-node-${slug}`.padEnd(43, '.'), capability: capability(slug) });

describe.each(DB_KINDS)('node administration on %s', (kind) => {
  let s: TestServer;
  let control: ApiClient;
  let psk: string;

  const get = (path: string, token = s.adminToken) => s.api.call(path, { token });
  const post = (path: string, token = s.adminToken) => s.api.call(path, { method: 'POST', token });
  const del = (path: string, token = s.adminToken) => s.api.call(path, { method: 'DELETE', token });

  /** Joins a node and has it apply its config, as a Node Manager does: it is then dispatchable. */
  async function joinNode(slug: string): Promise<{ id: string; jwt: string }> {
    const reg = await control.call('/v1/nodes/register', { body: registration(psk, slug) });
    expect(reg.status).toBe(201);
    const jwt = reg.body.auth.node_jwt;
    const cfg = await control.call('/v1/nodes/config', { token: jwt });
    const ack = await control.call('/v1/nodes/config', { token: jwt, body: { version: 1, node_slug: slug, config_version: cfg.body.config_version, ack_at: new Date().toISOString(), status: 'applied' } });
    expect(ack.status).toBe(204);
    return { id: reg.body.node_id, jwt };
  }

  const dispatchable = async (id: string) => (await get(`/v1/nodes/${id}`)).body.dispatchable as boolean;

  beforeAll(async () => {
    s = await startTestServer(kind);
    control = new ApiClient(s.cynode.controlUrl);
    psk = (await get('/v1/nodes/join')).body.psk;
  });
  afterAll(async () => {
    await s?.close();
  });

  it('lists nodes with their state, load and a capability summary, and shows one in full', async () => {
    const empty = await get('/v1/nodes');
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({ nodes: [] });

    const { id } = await joinNode('list-me');
    const list = await get('/v1/nodes');
    expect(list.body.nodes).toHaveLength(1);
    const node = list.body.nodes[0];
    expect(node).toMatchObject({
      node_id: id,
      id,
      node_slug: 'list-me',
      display_name: 'Node list-me',
      status: 'active',
      admin_state: 'enabled',
      enabled: true,
      drained: false,
      dispatchable: true,
      labels: ['gpu-box', 'test'],
      worker_api_target_url: 'http://10.0.0.7:12090',
      config_ack_status: 'applied',
      capability_summary: {
        os: 'linux',
        arch: 'arm64',
        cpu_cores: 8,
        ram_mb: 16384,
        gpu_present: true,
        container_runtime: 'podman',
        sandbox_supported: true,
        inference_running: true,
        models: ['qwen3:8b', 'llama3:8b'],
      },
      running_jobs: 0,
      max_concurrency: 2,
    });
    expect(Date.now() - Date.parse(node.last_seen_at)).toBeLessThan(10 * 60_000);
    expect(node.config_version).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(node).not.toHaveProperty('capability');
    expect(JSON.stringify(list.body)).not.toMatch(/ciphertext|token|v1\.[0-9a-f]{8}\./);

    const one = await get(`/v1/nodes/${id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ ...node, last_seen_at: expect.any(String), jobs: [] });
    // The report as the node sent it, fields unknown to the contract included.
    const { reported_at: _reportedAt, ...sent } = capability('list-me');
    expect(one.body.capability).toMatchObject(sent);
  });

  it('is for admins and operators: other users get 403, and the join key only with nodes.manage', async () => {
    const user = await s.createUser('plain-user');
    expect((await get('/v1/nodes', user.token)).status).toBe(403);
    expect((await get('/v1/nodes/join', user.token)).status).toBe(403);
    expect((await post('/v1/nodes/join/rotate', user.token)).status).toBe(403);
    const { id } = await joinNode('guarded');
    expect((await get(`/v1/nodes/${id}`, user.token)).status).toBe(403);
    expect((await post(`/v1/nodes/${id}:disable`, user.token)).status).toBe(403);
    expect((await del(`/v1/nodes/${id}`, user.token)).status).toBe(403);
    expect(await dispatchable(id)).toBe(true);
    const denials = await get(`/v1/audit?category=access&outcome=deny&actor_id=${user.id}`);
    expect(denials.body.events.map((e: any) => e.action)).toEqual(expect.arrayContaining(['nodes.read', 'nodes.manage']));

    const op = await s.createUser('node-operator');
    const bind = await s.api.call('/v1/role-bindings', { token: s.adminToken, body: { subject_type: 'user', subject_id: op.id, role: 'operator', scope_type: 'system' } });
    expect(bind.status).toBe(201);
    const list = await get('/v1/nodes', op.token);
    expect(list.status).toBe(200);
    expect(list.body.nodes.map((n: any) => n.node_slug)).toContain('guarded');
    // The operator role grants nodes.manage: operators may hand out the join key too.
    expect((await get('/v1/nodes/join', op.token)).status).toBe(200);
    expect((await post(`/v1/nodes/${id}:drain`, op.token)).status).toBe(200);
    expect((await post(`/v1/nodes/${id}:enable`, op.token)).status).toBe(200);
  });

  it('enables, disables and drains: only an enabled node takes new jobs', async () => {
    const { id } = await joinNode('switchable');
    const disabled = await post(`/v1/nodes/${id}:disable`);
    expect(disabled.status).toBe(200);
    expect(disabled.body).toEqual({ node_id: id, admin_state: 'disabled', enabled: false, drained: false });
    expect(await dispatchable(id)).toBe(false);

    const enabled = await post(`/v1/nodes/${id}:enable`);
    expect(enabled.body).toEqual({ node_id: id, admin_state: 'enabled', enabled: true, drained: false });
    expect(await dispatchable(id)).toBe(true);

    const drained = await post(`/v1/nodes/${id}:drain`);
    expect(drained.body).toEqual({ node_id: id, admin_state: 'draining', enabled: true, drained: true });
    expect(await dispatchable(id)).toBe(false);
    expect((await get(`/v1/nodes/${id}`)).body).toMatchObject({ status: 'active', admin_state: 'draining' });

    // The same actions under /{id}/enable etc., for clients that cannot send a colon.
    expect((await post(`/v1/nodes/${id}/enable`)).body).toMatchObject({ admin_state: 'enabled' });
    expect((await post(`/v1/nodes/${id}/disable`)).body).toMatchObject({ admin_state: 'disabled' });
    expect((await post(`/v1/nodes/${id}/drain`)).body).toMatchObject({ admin_state: 'draining' });
    expect((await post(`/v1/nodes/${id}:enable`)).status).toBe(200);

    // A node's own re-registration does not undo what an admin decided.
    await post(`/v1/nodes/${id}:disable`);
    expect((await control.call('/v1/nodes/register', { body: registration(psk, 'switchable') })).status).toBe(200);
    expect((await get(`/v1/nodes/${id}`)).body).toMatchObject({ admin_state: 'disabled', dispatchable: false });

    const audit = await get(`/v1/audit?resource_type=node&resource_id=${id}&category=admin&limit=200`);
    const actions = audit.body.events.map((e: any) => e.action);
    for (const a of ['node_enabled', 'node_disabled', 'node_drained']) expect(actions).toContain(a);
    expect(audit.body.events.find((e: any) => e.action === 'node_drained')).toMatchObject({ actor_handle: 'admin', details: { node_slug: 'switchable', to: 'draining' } });
  });

  it('deletes a node with its credentials; registering again creates it anew', async () => {
    const { id, jwt } = await joinNode('short-lived');
    expect((await del(`/v1/nodes/${id}`)).status).toBe(204);
    expect((await get(`/v1/nodes/${id}`)).status).toBe(404);
    expect((await get('/v1/nodes')).body.nodes.map((n: any) => n.id)).not.toContain(id);
    expect((await del(`/v1/nodes/${id}`)).status).toBe(404);
    expect(await s.cynode.db.query('SELECT 1 FROM nodes WHERE id = $1', [id])).toEqual([]);

    // Its node token leads nowhere now: the config is gone (404), and the heartbeat is refused
    // like an expired token (401), which is what makes a running node register again.
    expect((await control.call('/v1/nodes/config', { token: jwt })).status).toBe(404);
    expect((await control.call('/v1/nodes/config', { token: jwt, body: { version: 1, node_slug: 'short-lived', config_version: '01J0000000000000000000000', ack_at: new Date().toISOString(), status: 'applied' } })).status).toBe(404);
    expect((await control.call('/v1/nodes/capability', { token: jwt, body: capability('short-lived') })).status).toBe(401);

    const again = await control.call('/v1/nodes/register', { body: registration(psk, 'short-lived') });
    expect(again.status).toBe(201);
    expect(again.body.node_id).not.toBe(id);
    const audit = await get(`/v1/audit?action=node_deleted&resource_id=${id}`);
    expect(audit.body.events).toHaveLength(1);
  });

  it('refuses to delete a node while a job runs on it', async () => {
    const { id } = await joinNode('busy');
    const me = (await get('/v1/users/me')).body;
    const [task] = await s.cynode.db.query<{ id: string }>(
      `INSERT INTO tasks (name, created_by, project_id, input_mode, prompt, status) VALUES ($1, $2, $3, 'commands', 'sleep 600', 'running') RETURNING id`,
      [`busy-${randomUUID()}`, me.id, me.default_project_id],
    );
    const [job] = await s.cynode.db.query<{ id: string }>(
      `INSERT INTO jobs (task_id, kind, status, payload, node_id, started_at) VALUES ($1, 'sandbox', 'running', '{}'::jsonb, $2, now()) RETURNING id`,
      [task!.id, id],
    );

    const listed = (await get('/v1/nodes')).body.nodes.find((n: any) => n.id === id);
    expect(listed.running_jobs).toBe(1);
    const one = await get(`/v1/nodes/${id}`);
    expect(one.body.running_jobs).toBe(1);
    expect(one.body.jobs).toEqual([{ job_id: job!.id, task_id: task!.id, started_at: expect.any(String) }]);

    const refused = await del(`/v1/nodes/${id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/drain/);
    expect((await get(`/v1/nodes/${id}`)).status).toBe(200);

    await s.cynode.db.query(`UPDATE jobs SET status = 'completed', ended_at = now() WHERE id = $1`, [job!.id]);
    expect((await del(`/v1/nodes/${id}`)).status).toBe(204);
    // The finished job keeps its history; it just no longer names the node.
    expect(await s.cynode.db.query('SELECT node_id FROM jobs WHERE id = $1', [job!.id])).toEqual([{ node_id: null }]);
  });

  it('answers 404 for unknown nodes and 400 for malformed ids', async () => {
    expect((await get(`/v1/nodes/${UNKNOWN}`)).status).toBe(404);
    for (const action of ['enable', 'disable', 'drain']) {
      expect((await post(`/v1/nodes/${UNKNOWN}:${action}`)).status).toBe(404);
      expect((await post(`/v1/nodes/${UNKNOWN}/${action}`)).status).toBe(404);
      expect((await post(`/v1/nodes/not-a-uuid:${action}`)).status).toBe(400);
    }
    expect((await del(`/v1/nodes/${UNKNOWN}`)).status).toBe(404);
    expect((await get('/v1/nodes/not-a-uuid')).status).toBe(400);
    expect((await del('/v1/nodes/not-a-uuid')).status).toBe(400);
    const other = await post(`/v1/nodes/${UNKNOWN}:reboot`);
    expect([404, 405]).toContain(other.status);
    expect(other.headers.get('content-type')).toContain('application/problem+json');
  });
});
