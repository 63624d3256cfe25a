import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataFiles } from '../../server/config/config';
import { MasterKey } from '../../server/vault/master-key';
import { ApiClient, DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/*
 * The control plane as a node sees it: plain HTTP with fetch, the join key from the gateway,
 * and nothing of the Node Manager.
 */

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function capability(slug: string, over: Record<string, unknown> = {}) {
  return {
    version: 1,
    reported_at: new Date().toISOString(),
    node: { node_slug: slug, name: `Node ${slug}`, labels: ['test'] },
    platform: { os: 'linux', arch: 'amd64' },
    compute: { cpu_cores: 4, ram_mb: 8192 },
    container_runtime: { runtime: 'docker', version: '24.0' },
    gpu: { present: false },
    sandbox: { supported: true, max_concurrency: 3 },
    inference: { supported: false, running: false },
    worker_api: { base_url: `http://127.0.0.1:12090` },
    ...over,
  };
}

/** Polls until `check` returns a value, or fails after a generous deadline. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, deadlineMs = 45_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A node's side of the conversation, over HTTP only; its secret is its own, as a Node Manager's is. */
class FakeNode {
  jwt = '';
  id = '';
  constructor(
    private readonly control: ApiClient,
    readonly slug: string,
    readonly secret = randomBytes(32).toString('base64url'),
  ) {}

  async register(psk: string, over: Record<string, unknown> = {}) {
    const res = await this.control.call('/v1/nodes/register', { body: { psk, node_secret: this.secret, capability: capability(this.slug, over) } });
    if (res.status === 200 || res.status === 201) {
      this.jwt = res.body.auth.node_jwt;
      this.id = res.body.node_id;
    }
    return res;
  }
  config(token = this.jwt) {
    return this.control.call('/v1/nodes/config', { token });
  }
  ack(configVersion: string, over: Record<string, unknown> = {}) {
    return this.control.call('/v1/nodes/config', { token: this.jwt, body: { version: 1, node_slug: this.slug, config_version: configVersion, ack_at: new Date().toISOString(), status: 'applied', ...over } });
  }
  report(over: Record<string, unknown> = {}) {
    return this.control.call('/v1/nodes/capability', { token: this.jwt, body: capability(this.slug, over) });
  }
}

describe.each(DB_KINDS)('control plane on %s', (kind) => {
  let s: TestServer;
  let control: ApiClient;
  let psk: string;

  const nodeView = async (id: string) => {
    const res = await s.api.call('/v1/nodes', { token: s.adminToken });
    expect(res.status).toBe(200);
    return res.body.nodes.find((n: any) => n.id === id);
  };

  beforeAll(async () => {
    s = await startTestServer(kind);
    control = new ApiClient(s.cynode.controlUrl);
    const join = await s.api.call('/v1/nodes/join', { token: s.adminToken });
    expect(join.status).toBe(200);
    psk = join.body.psk;
  });
  afterAll(async () => {
    await s?.close();
  });

  it('hands admins the join key, the control plane URL and the command to run', async () => {
    const join = await s.api.call('/v1/nodes/join', { token: s.adminToken });
    expect(join.body.psk).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // A secret: no browser or proxy cache may keep it.
    expect(join.headers.get('cache-control')).toBe('no-store');
    expect(join.body.psk).toBe(psk);
    expect(join.body.source).toBe('generated');
    const port = new URL(s.cynode.controlUrl).port;
    expect(join.body.control_plane_url).toBe(`http://127.0.0.1:${port}`);
    expect(join.body.join_command).toBe(`cynode node --join http://127.0.0.1:${port} --psk ${psk}`);
    const audit = await s.api.call('/v1/audit?action=node_psk_read', { token: s.adminToken });
    expect(audit.body.events.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(audit.body.events)).not.toContain(psk);
  });

  it('serves its own OpenAPI document, listing the node-facing routes, to a registered node', async () => {
    expect((await control.call('/v1/openapi.json')).status).toBe(401);
    const node = new FakeNode(control, 'openapi-reader');
    expect((await node.register(psk)).status).toBe(201);
    const doc = await control.call('/v1/openapi.json', { token: node.jwt });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.body.info.title).toBe('CyNode control plane');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/nodes/register', '/v1/nodes/config', '/v1/nodes/capability']));
    // The gateway's user routes are not the control plane's.
    expect(doc.body.paths['/v1/users']).toBeUndefined();
  });

  it('registers a node with the join key: 201 and a node token, 200 when it registers again', async () => {
    const node = new FakeNode(control, 'alpha');
    const first = await node.register(psk);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ version: 1, node_id: expect.stringMatching(UUID) });
    expect(first.body.auth.node_jwt.split('.')).toHaveLength(3);
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(Date.parse(first.body.auth.expires_at) - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
    // Built from the address the node used, so they work wherever the node reached us from.
    expect(first.body.orchestrator).toEqual({
      base_url: s.cynode.controlUrl,
      endpoints: {
        worker_registration_url: `${s.cynode.controlUrl}/v1/nodes/register`,
        node_config_url: `${s.cynode.controlUrl}/v1/nodes/config`,
        node_report_url: `${s.cynode.controlUrl}/v1/nodes/capability`,
      },
    });

    // Registering again, with the node's own secret.
    const again = await node.register(psk, { node: { node_slug: 'alpha', name: 'Alpha renamed' } });
    expect(again.status).toBe(200);
    expect(again.body.node_id).toBe(first.body.node_id);
    expect(again.headers.get('cache-control')).toBe('no-store');

    const listed = await nodeView(first.body.node_id);
    expect(listed).toMatchObject({ node_slug: 'alpha', display_name: 'Alpha renamed', status: 'active', worker_api_target_url: 'http://127.0.0.1:12090', max_concurrency: 3, dispatchable: false });
    const audit = await s.api.call(`/v1/audit?action=node_registered&resource_id=${first.body.node_id}`, { token: s.adminToken });
    expect(audit.body.events.map((e: any) => e.details)).toEqual([
      { node_slug: 'alpha', new: false },
      { node_slug: 'alpha', new: true },
    ]);
    expect(audit.body.events[0]).toMatchObject({ category: 'admin', actor_id: null });
  });

  it('refuses a wrong join key with one generic 401, and bad bodies with 400', async () => {
    const secret = randomBytes(32).toString('base64url');
    const wrong = await control.call('/v1/nodes/register', { body: { psk: psk + 'x', node_secret: secret, capability: capability('mallory') } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('content-type')).toContain('application/problem+json');
    const other = await control.call('/v1/nodes/register', { body: { psk: 'something-else-entirely', node_secret: secret, capability: capability('mallory') } });
    expect(other.status).toBe(401);
    expect(other.body.detail).toBe(wrong.body.detail);

    const bad = [
      { psk, node_secret: secret, capability: { ...capability('bad'), version: 2 } },
      { psk, node_secret: secret, capability: capability('Not A Slug') },
      { psk, node_secret: secret, capability: { ...capability('bad'), worker_api: { base_url: 'ftp://x' } } },
      { psk, node_secret: secret, capability: { ...capability('bad'), worker_api: undefined } },
      { psk, node_secret: secret, capability: capability('bad'), extra: true },
      { node_secret: secret, capability: capability('bad') },
      // A node proves who it is with a secret of its own, long enough not to be guessed.
      { psk, capability: capability('bad') },
      { psk, node_secret: 'too-short', capability: capability('bad') },
    ];
    for (const body of bad) expect((await control.call('/v1/nodes/register', { body })).status, JSON.stringify(body)).toBe(400);
    expect((await control.call('/v1/nodes/register', { rawBody: '{"psk":', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    const nodes = (await s.api.call('/v1/nodes', { token: s.adminToken })).body.nodes.map((n: any) => n.node_slug);
    expect(nodes).not.toContain('mallory');
    expect(nodes).not.toContain('bad');
  });

  it('serves the config only with a node token, and keeps its version while nothing changes', async () => {
    const node = new FakeNode(control, 'beta');
    expect((await node.register(psk)).status).toBe(201);

    expect((await node.config('')).status).toBe(401);
    expect((await node.config('not-a-jwt')).status).toBe(401);
    // A user's access token is no node token, and a node token is no user credential.
    expect((await node.config(s.adminToken)).status).toBe(401);
    expect((await s.api.call('/v1/users/me', { token: node.jwt })).status).toBe(401);
    const tampered = node.jwt.slice(0, -3) + (node.jwt.endsWith('AAA') ? 'BBB' : 'AAA');
    expect((await node.config(tampered)).status).toBe(401);

    const res = await node.config();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      version: 1,
      config_version: expect.stringMatching(ULID),
      node_slug: 'beta',
      orchestrator: { base_url: s.cynode.controlUrl, endpoints: { worker_api_target_url: 'http://127.0.0.1:12090', node_report_url: `${s.cynode.controlUrl}/v1/nodes/capability` } },
      policy: { sandbox: { default_network_policy: 'none', allowed_network_policies: ['none', 'restricted'] } },
      inference_backend: { enabled: false },
      constraints: { max_request_bytes: 10 * 1024 * 1024, max_job_timeout_seconds: 10800 },
      heartbeat_interval_seconds: 15,
    });
    expect(res.body.worker_api.orchestrator_bearer_token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const again = await node.config();
    expect(again.body.config_version).toBe(res.body.config_version);
    expect(again.body.worker_api.orchestrator_bearer_token).toBe(res.body.worker_api.orchestrator_bearer_token);
  });

  it('gives a node that registers again a new node token and a new Worker API token; the earlier ones are void', async () => {
    const node = new FakeNode(control, 'beta-again');
    expect((await node.register(psk)).status).toBe(201);
    const first = (await node.config()).body;
    await node.ack(first.config_version);
    expect((await nodeView(node.id)).dispatchable).toBe(true);
    const oldJwt = node.jwt;

    expect((await node.register(psk)).status).toBe(200);
    expect(node.jwt).not.toBe(oldJwt);
    // Whoever held the earlier node token cannot fetch the new Worker API token with it.
    for (const res of [await node.config(oldJwt), await control.call('/v1/nodes/capability', { token: oldJwt, body: capability('beta-again') })]) {
      expect(res.status).toBe(401);
      expect(res.body.detail).toMatch(/register again/);
    }
    const oldAck = await control.call('/v1/nodes/config', { token: oldJwt, body: { version: 1, node_slug: 'beta-again', config_version: first.config_version, ack_at: new Date().toISOString(), status: 'applied' } });
    expect(oldAck.status).toBe(401);

    const next = (await node.config()).body;
    expect(next.worker_api.orchestrator_bearer_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(next.worker_api.orchestrator_bearer_token).not.toBe(first.worker_api.orchestrator_bearer_token);
    expect(next.config_version > first.config_version).toBe(true);
    // No work until the node has applied the config with its new token.
    expect((await nodeView(node.id)).dispatchable).toBe(false);
    expect((await node.ack(next.config_version)).status).toBe(204);
    expect((await nodeView(node.id)).dispatchable).toBe(true);
  });

  it("refuses to register a taken name without that node's secret (409, audited), and the node stays as it was", async () => {
    const victim = new FakeNode(control, 'victim');
    expect((await victim.register(psk)).status).toBe(201);
    const cfg = (await victim.config()).body;
    await victim.ack(cfg.config_version);
    const before = await nodeView(victim.id);
    expect(before.dispatchable).toBe(true);

    // Someone with the join key, but not the node's secret, claims its name and points it elsewhere.
    const thief = new FakeNode(control, 'victim');
    const taken = await thief.register(psk, { worker_api: { base_url: 'http://203.0.113.9:12090' } });
    expect(taken.status).toBe(409);
    expect(taken.headers.get('content-type')).toContain('application/problem+json');
    expect(taken.body.detail).toMatch(/"victim" is taken/);
    expect(taken.body.detail).toMatch(/state directory/);
    expect(taken.body.detail).toMatch(/admin delete/);
    expect(taken.body.auth).toBeUndefined();
    expect(JSON.stringify(taken.body)).not.toContain(victim.id);

    // Nothing about the node changed: same address, same registration, same token, still dispatchable.
    const after = await nodeView(victim.id);
    expect(after).toMatchObject({ worker_api_target_url: before.worker_api_target_url, registered_at: before.registered_at, config_version: cfg.config_version, dispatchable: true });
    const still = await victim.config();
    expect(still.status).toBe(200);
    expect(still.body.worker_api.orchestrator_bearer_token).toBe(cfg.worker_api.orchestrator_bearer_token);
    expect(still.body.orchestrator.endpoints.worker_api_target_url).toBe('http://127.0.0.1:12090');

    const refused = await s.api.call(`/v1/audit?action=node_register_refused&resource_id=${victim.id}`, { token: s.adminToken });
    expect(refused.body.events).toHaveLength(1);
    expect(refused.body.events[0]).toMatchObject({ category: 'auth', outcome: 'failure', actor_id: null, details: { node_slug: 'victim' } });
    expect(JSON.stringify(refused.body.events)).not.toContain(thief.secret);

    // The node itself, with its secret, registers again as ever; a deleted name is free again.
    expect((await victim.register(psk)).status).toBe(200);
    expect((await s.api.call(`/v1/nodes/${victim.id}`, { method: 'DELETE', token: s.adminToken })).status).toBe(204);
    expect((await thief.register(psk)).status).toBe(201);
  });

  it('takes acks for the token’s own node only; applied makes the node dispatchable', async () => {
    const node = new FakeNode(control, 'gamma');
    await node.register(psk);
    const cfg = (await node.config()).body;

    expect((await node.ack(cfg.config_version, { node_slug: 'beta' })).status).toBe(400);
    expect((await node.ack(cfg.config_version, { version: 2 })).status).toBe(400);
    expect((await node.ack(cfg.config_version, { status: 'rolled_back' })).status).toBe(400);
    expect((await control.call('/v1/nodes/config', { body: { version: 1, node_slug: 'gamma', config_version: cfg.config_version, ack_at: new Date().toISOString(), status: 'applied' } })).status).toBe(401);
    expect((await nodeView(node.id)).dispatchable).toBe(false);

    const failed = await node.ack(cfg.config_version, { status: 'failed', error: { type: 'sandbox_unavailable', message: 'no container runtime' } });
    expect(failed.status).toBe(204);
    expect(await nodeView(node.id)).toMatchObject({ dispatchable: false, config_ack_status: 'failed', config_ack_error: { type: 'sandbox_unavailable', message: 'no container runtime' } });

    expect((await node.ack(cfg.config_version)).status).toBe(204);
    expect(await nodeView(node.id)).toMatchObject({ dispatchable: true, config_ack_status: 'applied', config_version: cfg.config_version, config_ack_version: cfg.config_version, config_ack_error: null });
  });

  it('gives a node that moved a new config version, and no work until it applies that one', async () => {
    const node = new FakeNode(control, 'delta');
    await node.register(psk);
    const v1 = (await node.config()).body.config_version;
    await node.ack(v1);
    expect((await nodeView(node.id)).dispatchable).toBe(true);

    expect((await node.report({ worker_api: { base_url: 'http://127.0.0.1:12099/' } })).status).toBe(204);
    const moved = await nodeView(node.id);
    expect(moved).toMatchObject({ worker_api_target_url: 'http://127.0.0.1:12099', dispatchable: false });
    const cfg = (await node.config()).body;
    expect(cfg.config_version > v1).toBe(true);
    expect(cfg.orchestrator.endpoints.worker_api_target_url).toBe('http://127.0.0.1:12099');
    await node.ack(cfg.config_version);
    expect((await nodeView(node.id)).dispatchable).toBe(true);
    // A node that stops supporting sandboxes takes no sandbox work.
    await node.report({ sandbox: { supported: false } });
    expect(await nodeView(node.id)).toMatchObject({ dispatchable: false, max_concurrency: 1 });
  });

  it('takes capability reports as heartbeats, for the token’s own node only', async () => {
    const node = new FakeNode(control, 'epsilon');
    await node.register(psk);
    const before = (await nodeView(node.id)).last_seen_at;
    await new Promise((r) => setTimeout(r, 20));
    const report = await node.report({ inference: { supported: true, running: true, available_models: ['llama3:8b'] } });
    expect(report.status).toBe(204);
    const after = await nodeView(node.id);
    expect(Date.parse(after.last_seen_at)).toBeGreaterThan(Date.parse(before));
    expect(after.capability_summary).toMatchObject({ inference_running: true, models: ['llama3:8b'] });

    const other = await control.call('/v1/nodes/capability', { token: node.jwt, body: capability('alpha') });
    expect(other.status).toBe(400);
    expect((await control.call('/v1/nodes/capability', { body: capability('epsilon') })).status).toBe(401);
    expect((await node.report({ version: 2 })).status).toBe(400);
  });

  it('takes the secret of a node registered by an earlier version at its next registration, after refusing its old token', async () => {
    // What an earlier version left: a row without the node's secret, and a node token without a registration.
    const id = randomUUID();
    await s.cynode.db.query(`INSERT INTO nodes (id, node_slug, worker_api_target_url, last_seen_at) VALUES ($1, 'old-timer', 'http://127.0.0.1:12090', now())`, [id]);
    const key = (await MasterKey.fromFile(dataFiles.masterKey(s.config.dataDir))).derive('node-token-signing');
    const now = Math.floor(Date.now() / 1000);
    const oldJwt = await new SignJWT({ token_type: 'node', node_slug: 'old-timer' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer('cynode').setSubject(id).setIssuedAt(now).setExpirationTime(now + 3600).sign(key);
    // Refused, so that the node registers again now rather than when the token runs out.
    expect((await control.call('/v1/nodes/config', { token: oldJwt })).status).toBe(401);
    expect((await control.call('/v1/nodes/capability', { token: oldJwt, body: capability('old-timer') })).status).toBe(401);

    const node = new FakeNode(control, 'old-timer');
    const again = await node.register(psk);
    expect(again.status).toBe(200);
    expect(again.body.node_id).toBe(id);
    const audit = await s.api.call(`/v1/audit?action=node_registered&resource_id=${id}`, { token: s.adminToken });
    expect(audit.body.events[0].details).toEqual({ node_slug: 'old-timer', new: false, secret_recorded: true });
    // From now on the name is that node's.
    expect((await new FakeNode(control, 'old-timer').register(psk)).status).toBe(409);
    expect((await node.register(psk)).status).toBe(200);
  });

  it('keeps the worker tokens, the node secrets and the join key out of the database in plain text', async () => {
    const tokens: string[] = [];
    const secrets: string[] = [];
    for (const slug of ['zeta', 'zeta-1', 'zeta-2', 'zeta-3']) {
      const n = new FakeNode(control, slug);
      expect((await n.register(psk)).status).toBe(201);
      tokens.push((await n.config()).body.worker_api.orchestrator_bearer_token);
      secrets.push(n.secret);
    }
    expect(new Set(tokens).size).toBe(tokens.length);

    const db = s.cynode.db;
    const nodes = (await db.query<{ t: string }>('SELECT to_jsonb(n)::text AS t FROM nodes n')).map((r) => r.t).join('\n');
    const settings = (await db.query<{ t: string }>('SELECT to_jsonb(s)::text AS t FROM system_settings s')).map((r) => r.t).join('\n');
    expect(nodes).toContain('v1.');
    expect(settings).toContain('v1.');
    for (const secret of [...tokens, ...secrets, psk]) {
      expect(nodes).not.toContain(secret);
      expect(settings).not.toContain(secret);
    }
    const audit = (await db.query<{ t: string }>('SELECT to_jsonb(a)::text AS t FROM audit_events a')).map((r) => r.t).join('\n');
    for (const secret of [...tokens, ...secrets, psk]) expect(audit).not.toContain(secret);
  });

  it('rotates the join key: the old one is refused, the new one admits nodes, registered nodes keep working', async () => {
    const old = new FakeNode(control, 'eta');
    await old.register(psk);
    const rotated = await s.api.call('/v1/nodes/join/rotate', { method: 'POST', token: s.adminToken });
    expect(rotated.status).toBe(200);
    expect(rotated.body.psk).not.toBe(psk);
    expect(rotated.headers.get('cache-control')).toBe('no-store');
    expect(rotated.body.join_command).toContain(rotated.body.psk);
    expect((await s.api.call('/v1/nodes/join', { token: s.adminToken })).body.psk).toBe(rotated.body.psk);

    expect((await new FakeNode(control, 'theta').register(psk)).status).toBe(401);
    expect((await new FakeNode(control, 'theta').register(rotated.body.psk)).status).toBe(201);
    // A registered node's token is not the join key: it keeps reporting.
    expect((await old.report()).status).toBe(204);
    expect((await old.config()).status).toBe(200);
    const audit = await s.api.call('/v1/audit?action=node_psk_rotated', { token: s.adminToken });
    expect(audit.body.events[0]).toMatchObject({ actor_handle: 'admin', category: 'admin' });
    psk = rotated.body.psk;
  });
});

describe.each(DB_KINDS)('control plane liveness and a fixed join key on %s', (kind) => {
  let s: TestServer;
  let control: ApiClient;
  const PSK = 'fixed-join-key-from-the-environment';

  beforeAll(async () => {
    s = await startTestServer(kind, { nodePsk: PSK, nodeHeartbeatSeconds: 1, nodeStaleSeconds: 2 });
    control = new ApiClient(s.cynode.controlUrl);
  });
  afterAll(async () => {
    await s?.close();
  });

  const nodeView = async (id: string) => (await s.api.call(`/v1/nodes/${id}`, { token: s.adminToken })).body;

  it('uses CYNODE_NODE_PSK as the key, stores nothing, and refuses to rotate it', async () => {
    const join = await s.api.call('/v1/nodes/join', { token: s.adminToken });
    expect(join.body).toMatchObject({ psk: PSK, source: 'environment' });
    expect((await s.api.call('/v1/nodes/join/rotate', { method: 'POST', token: s.adminToken })).status).toBe(409);
    expect(await s.cynode.db.query("SELECT 1 FROM system_settings WHERE key = 'node_join_psk'")).toEqual([]);
    expect((await new FakeNode(control, 'wrong').register('fixed-join-key-from-the-environmenT')).status).toBe(401);
  });

  it('marks a silent node stale and not dispatchable, and active again on its next report', async () => {
    const node = new FakeNode(control, 'sleepy');
    expect((await node.register(PSK)).status).toBe(201);
    const cfg = (await node.config()).body;
    expect(cfg.heartbeat_interval_seconds).toBe(1);
    await node.ack(cfg.config_version);
    expect(await nodeView(node.id)).toMatchObject({ status: 'active', dispatchable: true });

    // The node stops reporting.
    await eventually('the node to turn stale', async () => ((await nodeView(node.id)).status === 'stale' ? true : undefined));
    expect(await nodeView(node.id)).toMatchObject({ status: 'stale', dispatchable: false });
    const audit = await s.api.call(`/v1/audit?action=node_stale&resource_id=${node.id}`, { token: s.adminToken });
    expect(audit.body.events).toHaveLength(1);

    expect((await node.report()).status).toBe(204);
    expect(await nodeView(node.id)).toMatchObject({ status: 'active', dispatchable: true });
    const back = await s.api.call(`/v1/audit?action=node_active&resource_id=${node.id}`, { token: s.adminToken });
    expect(back.body.events).toHaveLength(1);
  });
});
