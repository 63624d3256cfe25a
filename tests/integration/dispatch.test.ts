import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCynode, type Cynode } from '../../server/app';
import { dataFiles } from '../../server/config/config';
import type { Db } from '../../server/db';
import { endRunningJob } from '../../server/dispatch/store';
import { workerTokenContext } from '../../server/nodes/store';
import { Vault } from '../../server/vault/envelope';
import { MasterKey } from '../../server/vault/master-key';
import { DockerRunner } from '../../node-manager/sandbox/docker-runner';
import { startWorkerApi, type WorkerApi } from '../../node-manager/worker-api/server';
import { ADMIN_PASSWORD, ApiClient, DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { SANDBOX_IMAGE, ensureSandboxImage, jobContainers, tempDir, waitForRunningContainer } from '../support/docker';
import { until } from '../support/until';

/*
 * The dispatcher against real Worker APIs running real containers (Docker). Nodes are registered
 * by writing their rows directly (what a completed registration and config ack leave behind),
 * and kept alive by touching last_seen_at, so these tests depend only on the dispatcher, the
 * Worker API and the sandbox runner, not on the Node Manager agent.
 */


interface TestNode {
  id: string;
  slug: string;
  token: string;
  api: WorkerApi | null;
  url: string;
}

/** Everything a test started, stopped afterwards whatever happened. */
const cleanups: Array<() => Promise<unknown>> = [];

/** A real Worker API; `token` is the one it expects, or what it expects at each call. */
async function startNodeApi(token: string | (() => string)): Promise<{ api: WorkerApi; stateDir: string }> {
  const stateDir = await tempDir('cynode-dispatch-node-');
  const runner = new DockerRunner({ instanceId: `dispatch-test-${randomUUID()}`, jobsDir: join(stateDir, 'jobs'), image: SANDBOX_IMAGE });
  const getBearerToken = typeof token === 'string' ? () => token : token;
  const api = await startWorkerApi({ host: '127.0.0.1', port: 0, runner, nodeSlug: 'test', defaultImage: SANDBOX_IMAGE, getBearerToken, stateDir, logLevel: 'silent', maxConcurrency: 4 });
  cleanups.push(async () => {
    await api.close().catch(() => {});
    await rm(stateDir, { recursive: true, force: true });
  });
  return { api, stateDir };
}

/** A stand-in for a broken or hostile node: every jobs:run gets `answer`. Answers its base URL. */
async function fakeWorker(answer: (body: any, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => answer(JSON.parse(body || '{}'), res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r).closeAllConnections()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A node row as registration, config delivery and an `applied` ack leave it. */
async function insertNode(db: Db, vault: Vault, n: { slug: string; url: string; token: string; maxConcurrency?: number; enabled?: boolean }): Promise<string> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO nodes (id, node_slug, status, admin_state, worker_api_target_url, worker_api_token_ciphertext, config_version, config_ack_version,
                        config_ack_status, config_ack_at, capability, max_concurrency, last_seen_at)
     VALUES ($1, $2, 'active', $3, $4, $5, 'cfg-1', 'cfg-1', 'applied', now(), $6, $7, now())`,
    [id, n.slug, n.enabled === false ? 'disabled' : 'enabled', n.url, vault.seal(n.token, workerTokenContext(id)), JSON.stringify({ sandbox: { supported: true } }), n.maxConcurrency ?? 2],
  );
  return id;
}

describe.each(DB_KINDS)('dispatch to real Worker APIs on %s', (kind) => {
  let s: TestServer;
  let vault: Vault;
  /** The database heartbeats go to (it changes when a test restarts the orchestrator). */
  let db: Db;
  const alive = new Set<string>();
  let heartbeat: NodeJS.Timeout;

  beforeAll(async () => {
    await ensureSandboxImage();
    // A node silent for 3 s turns stale (the liveness sweep runs every second).
    s = await startTestServer(kind, { nodeStaleSeconds: 3, nodeHeartbeatSeconds: 1 });
    db = s.cynode.db;
    vault = new Vault(await MasterKey.fromFile(dataFiles.masterKey(s.config.dataDir)));
    heartbeat = setInterval(() => {
      if (alive.size > 0) void db.query('UPDATE nodes SET last_seen_at = now() WHERE id = ANY($1::uuid[])', [[...alive]]).catch(() => {});
    }, 300);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
    alive.clear();
    // Each test starts with no dispatchable node of an earlier one.
    await db.query(`UPDATE nodes SET admin_state = 'disabled'`).catch(() => {});
  });
  afterAll(async () => {
    clearInterval(heartbeat);
    await s?.close();
  });

  async function node(slug: string, opts: { maxConcurrency?: number; enabled?: boolean } = {}): Promise<TestNode> {
    const token = `worker-token-${randomUUID()}`;
    const { api } = await startNodeApi(token);
    const id = await insertNode(db, vault, { slug, url: api.url, token, ...opts });
    alive.add(id);
    return { id, slug, token, api, url: api.url };
  }

  const create = (api: ApiClient, token: string, body: Record<string, unknown>) => api.call('/v1/tasks', { token, body });
  const jobOf = async (taskId: string) => (await db.query<any>('SELECT * FROM jobs WHERE task_id = $1', [taskId]))[0];
  const finished = (api: ApiClient, token: string, taskId: string, timeoutMs?: number) =>
    until(
      `task ${taskId} to end`,
      async () => {
        const res = await api.call(`/v1/tasks/${taskId}`, { token });
        return res.body.closed ? res.body : null;
      },
      timeoutMs,
    );
  const runningOn = (taskId: string) => until(`the job of ${taskId} to run`, async () => ((await jobOf(taskId))?.status === 'running' ? jobOf(taskId) : null));

  it('runs a commands task on the node: echo hello completes with stdout hello', async () => {
    const n = await node('happy');
    const t = (await create(s.api, s.adminToken, { prompt: 'echo hello', input_mode: 'commands' })).body;
    expect(t.status).toBe('queued');
    const done = await finished(s.api, s.adminToken, t.id);
    expect(done).toMatchObject({ status: 'completed', closed: true, failure_reason: null });
    expect(done.started_at).toEqual(expect.any(String));

    const result = (await s.api.call(`/v1/tasks/${t.id}/result`, { token: s.adminToken })).body;
    expect(result).toMatchObject({ status: 'completed', stdout: 'hello\n', stderr: '', exit_code: 0 });
    expect(result.jobs).toHaveLength(1);
    expect(result.jobs[0]).toMatchObject({ status: 'completed', node_id: n.id, attempt: 1, failure_code: null });
    expect(JSON.parse(result.jobs[0].result)).toMatchObject({ version: 1, job_id: result.jobs[0].id, task_id: t.id, status: 'completed', exit_code: 0, stdout: 'hello\n' });
    const logs = (await s.api.call(`/v1/tasks/${t.id}/logs`, { token: s.adminToken })).body;
    expect(logs).toMatchObject({ stdout: 'hello\n', stderr: '', lines: ['hello'] });
    const job = await jobOf(t.id);
    expect(job.attempts_log).toEqual([expect.objectContaining({ attempt: 1, node_id: n.id, outcome: 'completed' })]);
    expect(job.held_by).toBeNull();
  });

  it('runs a script, and several command lines stopping at the first failure', async () => {
    await node('scripts');
    const script = (await create(s.api, s.adminToken, { prompt: 'echo "from $0"\necho err >&2\n', input_mode: 'script' })).body;
    const lines = (await create(s.api, s.adminToken, { prompt: 'echo a\nexit 3\necho b', input_mode: 'commands' })).body;
    expect((await finished(s.api, s.adminToken, script.id)).status).toBe('completed');
    const sr = (await s.api.call(`/v1/tasks/${script.id}/result`, { token: s.adminToken })).body;
    expect(sr).toMatchObject({ stdout: 'from /job/script.sh\n', stderr: 'err\n', exit_code: 0 });
    const ld = await finished(s.api, s.adminToken, lines.id);
    expect(ld).toMatchObject({ status: 'failed', failure_reason: 'exit code 3' });
    expect((await s.api.call(`/v1/tasks/${lines.id}/result`, { token: s.adminToken })).body).toMatchObject({ stdout: 'a\n', exit_code: 3 });
  });

  it('reports a failing command: exit 7 fails the task with exit code 7', async () => {
    await node('sevens');
    const t = (await create(s.api, s.adminToken, { prompt: 'echo about to fail; exit 7', input_mode: 'commands' })).body;
    const done = await finished(s.api, s.adminToken, t.id);
    expect(done).toMatchObject({ status: 'failed', closed: true, failure_reason: 'exit code 7' });
    const result = (await s.api.call(`/v1/tasks/${t.id}/result`, { token: s.adminToken })).body;
    expect(result).toMatchObject({ status: 'failed', exit_code: 7, stdout: 'about to fail\n' });
    expect(result.jobs[0]).toMatchObject({ status: 'failed', failure_code: 'exit_nonzero' });
  });

  it('fails a task that runs past its timeout, and leaves no container', async () => {
    await node('slowpoke');
    const t = (await create(s.api, s.adminToken, { prompt: 'sleep 600', input_mode: 'commands', timeout_seconds: 2 })).body;
    const done = await finished(s.api, s.adminToken, t.id);
    expect(done).toMatchObject({ status: 'failed', failure_reason: 'timed out after 2 s' });
    const job = await jobOf(t.id);
    expect(job.failure_code).toBe('timeout');
    await until('the container to be gone', async () => (await jobContainers(job.id)).length === 0);
  });

  it('cancels a running task: the container stops and the job ends canceled', async () => {
    await node('cancelable');
    const t = (await create(s.api, s.adminToken, { prompt: 'sleep 600', input_mode: 'commands' })).body;
    const job = await runningOn(t.id);
    await waitForRunningContainer(job.id);
    const res = await s.api.call(`/v1/tasks/${t.id}/cancel`, { token: s.adminToken, method: 'POST' });
    expect(res.status).toBe(200);
    expect((await s.api.call(`/v1/tasks/${t.id}`, { token: s.adminToken })).body).toMatchObject({ status: 'canceled', closed: true });
    await until('the job to end canceled', async () => (await jobOf(t.id)).status === 'canceled');
    await until('the container to be gone', async () => (await jobContainers(job.id)).length === 0);
    const after = (await s.api.call(`/v1/tasks/${t.id}`, { token: s.adminToken })).body;
    expect(after.status).toBe('canceled');
  });

  it('cancels a task the moment its job is handed to a node: the stop is repeated until it lands', async () => {
    await node('quick-cancel');
    const t = (await create(s.api, s.adminToken, { prompt: 'sleep 600', input_mode: 'commands' })).body;
    const job = await runningOn(t.id);
    expect((await s.api.call(`/v1/tasks/${t.id}/cancel`, { token: s.adminToken, method: 'POST' })).status).toBe(200);
    await until('the job to end canceled', async () => (await jobOf(t.id)).status === 'canceled');
    await until('the container to be gone', async () => (await jobContainers(job.id)).length === 0);
  });

  it('spreads jobs over nodes by load and per-node limits', async () => {
    const a = await node('spread-a', { maxConcurrency: 1 });
    const b = await node('spread-b', { maxConcurrency: 1 });
    const t1 = (await create(s.api, s.adminToken, { prompt: 'sleep 2; echo one', input_mode: 'commands' })).body;
    await runningOn(t1.id);
    const t2 = (await create(s.api, s.adminToken, { prompt: 'sleep 2; echo two', input_mode: 'commands' })).body;
    const t3 = (await create(s.api, s.adminToken, { prompt: 'echo three', input_mode: 'commands' })).body;
    for (const t of [t1, t2, t3]) expect((await finished(s.api, s.adminToken, t.id)).status).toBe('completed');
    const nodesUsed = new Set([(await jobOf(t1.id)).node_id, (await jobOf(t2.id)).node_id]);
    expect(nodesUsed).toEqual(new Set([a.id, b.id]));
  });

  it('moves a job to another node when its node goes away mid-job', async () => {
    const first = await node('leaving');
    const second = await node('staying', { enabled: false });
    const t = (await create(s.api, s.adminToken, { prompt: 'sleep 3; echo moved', input_mode: 'commands' })).body;
    const job = await runningOn(t.id);
    expect(job.node_id).toBe(first.id);
    await waitForRunningContainer(job.id);

    await db.query(`UPDATE nodes SET admin_state = 'enabled' WHERE id = $1`, [second.id]);
    // The first node dies: no more heartbeats, its Worker API and container gone.
    alive.delete(first.id);
    await first.api!.close();

    const done = await finished(s.api, s.adminToken, t.id);
    expect(done.status).toBe('completed');
    const after = await jobOf(t.id);
    expect(after).toMatchObject({ node_id: second.id, attempt: 2, status: 'completed' });
    expect(after.attempts_log).toEqual([
      expect.objectContaining({ attempt: 1, node_id: first.id, outcome: 'node_lost' }),
      expect.objectContaining({ attempt: 2, node_id: second.id, outcome: 'completed' }),
    ]);
    expect(after.result.stdout).toBe('moved\n');
  });

  it('notices a silent node from missed heartbeats, requeues its job, and ignores its late answer', async () => {
    // A node that takes the job and then never answers (cut off from the network, say).
    const token = `silent-token-${randomUUID()}`;
    const seen: Array<{ auth: string | undefined; body: any }> = [];
    const hung: IncomingMessage[] = [];
    const silent: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ auth: req.headers.authorization, body: JSON.parse(body || '{}') });
        if (req.url === '/v1/worker/jobs:run') hung.push(req);
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version: 1, job_id: 'x', status: 'not_running' }));
      });
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => silent.close(r).closeAllConnections()));
    const silentId = await insertNode(db, vault, { slug: 'silent', url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, token });
    alive.add(silentId);

    const t = (await create(s.api, s.adminToken, { prompt: 'echo rescued', input_mode: 'commands' })).body;
    const job = await runningOn(t.id);
    expect(job.node_id).toBe(silentId);
    await until('the silent node to receive the job', async () => seen.length > 0);
    // The dispatcher calls the node's own URL with that node's token.
    expect(seen[0]).toMatchObject({ auth: `Bearer ${token}`, body: { version: 1, task_id: t.id, job_id: job.id, sandbox: { command: ['sh', '-c', 'echo rescued'], network_policy: 'none' } } });

    const backup = await node('backup');
    alive.delete(silentId);
    const done = await finished(s.api, s.adminToken, t.id);
    expect(done.status).toBe('completed');
    const after = await jobOf(t.id);
    expect(after).toMatchObject({ node_id: backup.id, attempt: 2 });
    expect(after.attempts_log[0]).toMatchObject({ attempt: 1, node_id: silentId, outcome: 'node_lost' });
    expect((await db.query<any>('SELECT status FROM nodes WHERE id = $1', [silentId]))[0].status).toBe('stale');

    // The first attempt's answer, arriving now, changes nothing: its lease is gone.
    const late = await db.transaction((tx) =>
      endRunningJob(tx, { jobId: job.id, leaseId: job.lease_id, status: 'failed', result: null, failureCode: 'worker_error', reason: 'late', entry: { attempt: 1, node_id: silentId, outcome: 'failed', at: new Date().toISOString() } }),
    );
    expect(late).toBe(false);
    expect((await jobOf(t.id)).status).toBe('completed');
  });

  it('waits for a node to apply the Worker API token of its latest registration instead of failing the job', async () => {
    // The orchestrator has the token of the node's new registration; the node still the one before.
    let applied = `old-token-${randomUUID()}`;
    let asked = 0;
    const { api } = await startNodeApi(() => {
      asked++;
      return applied;
    });
    const token = `new-token-${randomUUID()}`;
    const id = await insertNode(db, vault, { slug: 'rotating', url: api.url, token });
    alive.add(id);

    const t = (await create(s.api, s.adminToken, { prompt: 'echo rotated', input_mode: 'commands' })).body;
    expect((await runningOn(t.id)).node_id).toBe(id);
    await until('the node to be called with the token it does not have yet', async () => asked > 0);
    applied = token;
    const done = await finished(s.api, s.adminToken, t.id);
    expect(done).toMatchObject({ status: 'completed', failure_reason: null });
    expect(await jobOf(t.id)).toMatchObject({ node_id: id, attempt: 1 });
  });

  it("keeps a node's own words and address out of the task's failure reason, for the admin only", async () => {
    const said = 'no route on build-host-7, see /srv/cynode/internal.log';
    const url = await fakeWorker((_body, res) => res.writeHead(404, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status: 404, detail: said })));
    alive.add(await insertNode(db, vault, { slug: 'refuser', url, token: 'refuser-token' }));

    const t = (await create(s.api, s.adminToken, { prompt: 'echo never', input_mode: 'commands' })).body;
    const done = await finished(s.api, s.adminToken, t.id);
    expect(done).toMatchObject({ status: 'failed', failure_reason: 'The node refused the job; an admin finds the details in the server log.' });
    const get = async (path: string) => (await s.api.call(path, { token: s.adminToken })).body;
    const runs = (await get(`/v1/runs?task_id=${t.id}`)).runs;
    expect(runs).toHaveLength(1);
    // The task, its result, its run and the run's events: everything its owner can read.
    const seen = JSON.stringify([done, await get(`/v1/tasks/${t.id}/result`), runs, await get(`/v1/runs/${runs[0].id}/events`)]);
    expect(seen).toContain('The node refused the job');
    for (const leak of ['build-host-7', new URL(url).host, '/v1/worker']) expect(seen).not.toContain(leak);
    // What the node said stays with the job's attempts, which only the server reads.
    expect((await jobOf(t.id)).attempts_log).toEqual([expect.objectContaining({ outcome: 'worker_error', detail: expect.stringContaining('build-host-7') })]);
  });

  it('says that a node was interrupted, not what it said about it', async () => {
    const said = 'interrupted: kernel panic on rack-12 (admin console http://10.1.2.3:9000)';
    const url = await fakeWorker((body, res) => {
      const at = new Date().toISOString();
      const result = { version: 1, task_id: body.task_id, job_id: body.job_id, status: 'failed', exit_code: -1, stdout: '', stderr: said, started_at: at, ended_at: at, truncated: { stdout: false, stderr: false } };
      res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end(JSON.stringify({ type: 'result', result, last_seq: 0, dropped: 0 }) + '\n');
    });
    // One node per attempt: a job never goes back to a node it was lost on.
    for (const slug of ['flaky-1', 'flaky-2', 'flaky-3']) alive.add(await insertNode(db, vault, { slug, url, token: `${slug}-token` }));

    const t = (await create(s.api, s.adminToken, { prompt: 'echo never', input_mode: 'commands' })).body;
    const done = await finished(s.api, s.adminToken, t.id);
    expect(done.status).toBe('failed');
    expect(done.failure_reason).toMatch(/^The job was lost: node "flaky-\d" was interrupted while running it \(it stopped or restarted\); it was tried 3 time\(s\), the limit\.$/);
  });

  it("fails a job whose sandbox cannot start with a plain reason; the job's stderr says why", async () => {
    await node('imageless');
    const t = (await create(s.api, s.adminToken, { prompt: 'echo never', input_mode: 'commands', image: 'cynode-test/no-such-image:never' })).body;
    const done = await finished(s.api, s.adminToken, t.id);
    expect(done).toMatchObject({ status: 'failed', failure_reason: "The sandbox could not start on its node; the job's stderr says why." });
    const result = (await s.api.call(`/v1/tasks/${t.id}/result`, { token: s.adminToken })).body;
    expect(result.stderr).toMatch(/cynode-test\/no-such-image:never is not present on this node/);
  });

  it('resumes a running job after the orchestrator restarts, without running it twice', async () => {
    const n = await node('steady');
    // Its own orchestrator on its own database, so that stopping it leaves the suite's alone.
    const own = await startTestServer(kind, { nodeStaleSeconds: 30, nodeHeartbeatSeconds: 1 });
    cleanups.push(() => own.close());
    const ownVault = new Vault(await MasterKey.fromFile(dataFiles.masterKey(own.config.dataDir)));
    const ownNode = await insertNode(own.cynode.db, ownVault, { slug: 'steady', url: n.url, token: n.token });

    const t = (await create(own.api, own.adminToken, { prompt: 'sleep 3; echo survived', input_mode: 'commands' })).body;
    const job = await until('the job to run', async () => {
      const j = (await own.cynode.db.query<any>('SELECT * FROM jobs WHERE task_id = $1', [t.id]))[0];
      return j?.status === 'running' ? j : null;
    });
    expect(job.node_id).toBe(ownNode);
    await waitForRunningContainer(job.id);

    await own.cynode.close();
    const second = await startCynode(own.config);
    cleanups.push(() => second.close());
    const api = new ApiClient(second.gatewayUrl);
    const token = (await api.login('admin', ADMIN_PASSWORD)).access_token;

    const done = await finished(api, token, t.id);
    expect(done.status).toBe('completed');
    const result = (await api.call(`/v1/tasks/${t.id}/result`, { token })).body;
    expect(result.stdout).toBe('survived\n');
    const after = (await second.db.query<any>('SELECT * FROM jobs WHERE id = $1', [job.id]))[0];
    // Same attempt, same lease: the new orchestrator re-attached to the job, it did not rerun it;
    // and the result was recorded by the new orchestrator's dispatcher, not the one that started it.
    expect(after).toMatchObject({ attempt: 1, lease_id: job.lease_id, status: 'completed' });
    expect(after.held_by).toBeNull();
    expect(after.attempts_log).toEqual([expect.objectContaining({ attempt: 1, node_id: ownNode, outcome: 'completed' })]);
    expect(after.attempts_log[0].by).not.toBe(job.held_by);
  });
});

describe('two orchestrators on one PostgreSQL', () => {
  let s: TestServer;
  let other: Cynode | undefined;
  beforeAll(async () => {
    await ensureSandboxImage();
    s = await startTestServer('postgres');
  });
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
    await other?.close();
    await s?.close();
  });

  it('share the queue: every job runs once, on the first attempt', async () => {
    // A second process on the same database (and master key), with a data directory of its own.
    const masterKey = (await readFile(dataFiles.masterKey(s.config.dataDir), 'utf8')).trim();
    const dataDir = await tempDir('cynode-second-');
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    other = await startCynode({ ...s.config, dataDir, masterKey });
    const vault = new Vault(MasterKey.fromBase64(masterKey));

    const token = `worker-token-${randomUUID()}`;
    const { api } = await startNodeApi(token);
    const nodeId = await insertNode(s.cynode.db, vault, { slug: 'shared', url: api.url, token, maxConcurrency: 4 });

    // Created through both gateways, so that both dispatchers are woken.
    const gateways = [s.api, new ApiClient(other.gatewayUrl)];
    const tasks = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => (await create(gateways[i % 2]!, s.adminToken, { prompt: `echo job-${i}`, input_mode: 'commands' })).body),
    );
    for (const [i, t] of tasks.entries()) {
      const done = await until(`task ${i}`, async () => {
        const res = await s.api.call(`/v1/tasks/${t.id}`, { token: s.adminToken });
        return res.body.closed ? res.body : null;
      });
      expect(done.status).toBe('completed');
      expect((await s.api.call(`/v1/tasks/${t.id}/result`, { token: s.adminToken })).body.stdout).toBe(`job-${i}\n`);
    }
    const jobs = await s.cynode.db.query<any>('SELECT attempt, node_id, attempts_log FROM jobs WHERE task_id = ANY($1::uuid[])', [tasks.map((t) => t.id)]);
    expect(jobs).toHaveLength(8);
    for (const j of jobs) {
      expect(j).toMatchObject({ attempt: 1, node_id: nodeId });
      expect(j.attempts_log).toEqual([expect.objectContaining({ outcome: 'completed' })]);
    }
  });

  const create = (api: ApiClient, token: string, body: Record<string, unknown>) => api.call('/v1/tasks', { token, body });
});
