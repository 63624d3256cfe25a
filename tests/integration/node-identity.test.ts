import { randomBytes } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCynode, type Cynode } from '../../server/app';
import { JoinRefusedError, NODE_SECRET_FILE, startNodeManager, type NodeManager } from '../../node-manager/agent/node-manager';
import { ApiClient, ADMIN_PASSWORD, DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { SANDBOX_IMAGE, ensureSandboxImage, tempDir } from '../support/docker';
import { startTestNode } from '../support/nodes';
import { until } from '../support/until';

/*
 * A node's identity with real Node Managers: the join key admits a new node, only the node's own
 * secret (in its state directory) registers its name again, and every registration gives it new
 * tokens that it picks up and keeps working with.
 */

interface Api {
  api: ApiClient;
  token: string;
  db: Cynode['db'];
}

const apiOf = (s: TestServer): Api => ({ api: s.api, token: s.adminToken, db: s.cynode.db });

async function nodeRow(a: Api, slug: string): Promise<{ id: string; registration_id: string; worker_api_token_ciphertext: string } | undefined> {
  return (await a.db.query<any>('SELECT id, registration_id, worker_api_token_ciphertext FROM nodes WHERE node_slug = $1', [slug]))[0];
}

const dispatchable = (a: Api, id: string) => until(`node ${id} to be dispatchable`, async () => (await a.api.call(`/v1/nodes/${id}`, { token: a.token })).body.dispatchable === true);

/** Runs `echo <word>` as a commands task and answers the node that ran it. */
async function runsOn(a: Api, word: string): Promise<string> {
  const t = (await a.api.call('/v1/tasks', { token: a.token, body: { prompt: `echo ${word}`, input_mode: 'commands' } })).body;
  const done = await until(`task ${t.id} to end`, async () => {
    const r = (await a.api.call(`/v1/tasks/${t.id}/result`, { token: a.token })).body;
    return ['completed', 'failed', 'canceled'].includes(r.status) ? r : undefined;
  });
  expect(done).toMatchObject({ status: 'completed', stdout: `${word}\n` });
  return done.jobs[0].node_id;
}

/** What someone with the join key sends to claim a name: any secret but the node's. */
function claim(psk: string, slug: string) {
  return {
    psk,
    node_secret: randomBytes(32).toString('base64url'),
    capability: {
      version: 1,
      reported_at: new Date().toISOString(),
      node: { node_slug: slug },
      platform: { os: 'linux', arch: 'amd64' },
      compute: { cpu_cores: 4, ram_mb: 8192 },
      sandbox: { supported: true, max_concurrency: 4 },
      worker_api: { base_url: 'http://203.0.113.9:12090' },
    },
  };
}

describe.each(DB_KINDS)('node identity with real Node Managers on %s', (kind) => {
  let s: TestServer;
  const nodes: NodeManager[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    await ensureSandboxImage();
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1, nodeStaleSeconds: 10 });
  });
  afterAll(async () => {
    for (const n of nodes) await n.close().catch(() => {});
    await s?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  async function start(name: string, stateDir?: string): Promise<{ node: NodeManager; stateDir: string }> {
    if (!stateDir) {
      const started = await startTestNode(s, name, { inferenceMode: 'disabled' });
      dirs.push(started.stateDir);
      nodes.push(started.node);
      return started;
    }
    const node = await startNodeManager({
      controlUrl: s.cynode.controlUrl,
      psk: (await s.api.call('/v1/nodes/join', { token: s.adminToken })).body.psk,
      name,
      stateDir,
      workerHost: '127.0.0.1',
      workerPort: 0,
      sandboxImage: SANDBOX_IMAGE,
      maxConcurrency: 1,
      inferenceMode: 'disabled',
      logLevel: 'silent',
      log: () => {},
    });
    nodes.push(node);
    return { node, stateDir };
  }

  it('keeps a restarted node by its secret, with new tokens, and refuses another machine that takes its name', async () => {
    const a = apiOf(s);
    const { node, stateDir } = await start('box-a');
    const first = (await nodeRow(a, 'box-a'))!;
    await dispatchable(a, first.id);

    // The secret is the node's own: kept readable by its user only, stored by the orchestrator as a digest.
    const secretFile = join(stateDir, NODE_SECRET_FILE);
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
    const secret = (await readFile(secretFile, 'utf8')).trim();
    expect(secret.length).toBeGreaterThanOrEqual(43);
    const rows = (await a.db.query<{ t: string }>('SELECT to_jsonb(n)::text AS t FROM nodes n')).map((r) => r.t).join('\n');
    expect(rows).not.toContain(secret);

    // Another machine, with the join key but its own state directory, asks for the same name.
    const elsewhere = await tempDir('cynode-impostor-');
    dirs.push(elsewhere);
    const refused = await start('box-a', elsewhere).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(JoinRefusedError);
    expect((refused as Error).message).toMatch(/"box-a" is taken/);
    expect(await nodeRow(a, 'box-a')).toEqual(first);
    expect(await runsOn(a, 'still-mine')).toBe(first.id);

    // The node itself restarts from its state directory: same node, new credentials, working.
    await node.close();
    await start('box-a', stateDir);
    const again = (await nodeRow(a, 'box-a'))!;
    expect(again.id).toBe(first.id);
    expect(again.registration_id).not.toBe(first.registration_id);
    expect(again.worker_api_token_ciphertext).not.toBe(first.worker_api_token_ciphertext);
    await dispatchable(a, first.id);
    expect(await runsOn(a, 'after-restart')).toBe(first.id);
  });

  it('has a node whose node token is no longer valid register again at its next heartbeat, and keep running jobs', async () => {
    const a = apiOf(s);
    for (const n of nodes.splice(0)) await n.close();
    await start('box-b');
    const first = (await nodeRow(a, 'box-b'))!;
    await dispatchable(a, first.id);

    // As when its 24-hour token expires: the next report is refused and the node registers again.
    await a.db.query('UPDATE nodes SET registration_id = gen_random_uuid() WHERE id = $1', [first.id]);
    const voided = (await nodeRow(a, 'box-b'))!.registration_id;
    const again = await until('the node to register again', async () => {
      const row = (await nodeRow(a, 'box-b'))!;
      return row.registration_id !== voided ? row : undefined;
    });
    expect(again.id).toBe(first.id);
    expect(again.worker_api_token_ciphertext).not.toBe(first.worker_api_token_ciphertext);
    await dispatchable(a, first.id);
    expect(await runsOn(a, 'new-token')).toBe(first.id);
  });
});

describe.each(DB_KINDS)('the embedded node on %s', (kind) => {
  let s: TestServer;
  let second: Cynode | undefined;

  beforeAll(async () => {
    await ensureSandboxImage();
    s = await startTestServer(kind, { embeddedNode: true, inferenceMode: 'disabled', nodeHeartbeatSeconds: 1, nodeStaleSeconds: 10 });
  });
  afterAll(async () => {
    await second?.close();
    await s?.close();
  });

  it('cannot be taken over with the join key, and keeps its name and work across restarts of the server', async () => {
    const a = apiOf(s);
    const desktop = await until('the embedded node to be dispatchable', async () => (await a.api.call('/v1/nodes', { token: a.token })).body.nodes.find((n: any) => n.dispatchable));
    const before = (await nodeRow(a, desktop.node_slug))!;

    // An operator (or any holder of the join key) registers the desktop node's name.
    const psk = (await a.api.call('/v1/nodes/join', { token: a.token })).body.psk;
    const control = new ApiClient(s.cynode.controlUrl);
    const taken = await control.call('/v1/nodes/register', { body: claim(psk, desktop.node_slug) });
    expect(taken.status).toBe(409);
    expect(taken.body.auth).toBeUndefined();
    expect(await nodeRow(a, desktop.node_slug)).toEqual(before);
    expect((await a.api.call(`/v1/nodes/${desktop.node_id}`, { token: a.token })).body).toMatchObject({ worker_api_target_url: desktop.worker_api_target_url, dispatchable: true });
    expect(await runsOn(a, 'desktop')).toBe(desktop.node_id);

    // The server restarts on the same data directory and database: the same node joins again.
    await s.cynode.close();
    second = await startCynode(s.config);
    const api = new ApiClient(second.gatewayUrl);
    const b: Api = { api, token: (await api.login('admin', ADMIN_PASSWORD)).access_token, db: second.db };
    await dispatchable(b, desktop.node_id);
    const nodes = (await api.call('/v1/nodes', { token: b.token })).body.nodes;
    expect(nodes.map((n: any) => n.node_id)).toEqual([desktop.node_id]);
    expect((await nodeRow(b, desktop.node_slug))!.worker_api_token_ciphertext).not.toBe(before.worker_api_token_ciphertext);
    expect(await runsOn(b, 'restarted')).toBe(desktop.node_id);
  });
});
