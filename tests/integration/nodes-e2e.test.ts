import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { login, occupyPort, runCli, serve, stopQuietly, type CliRun, type Served } from '../support/cli';
import { ensureSandboxImage, jobContainers } from '../support/docker';
import { until } from '../support/until';

// The whole appliance as a user runs it: the built `cynode serve` with its embedded node, a
// second machine's `cynode node` joining over HTTP, the real Docker engine. Slow by nature, so
// it runs on PGlite only; dispatch.test.ts covers the queue on both databases.

const ADMIN = 'admin-password-1';
// Fast heartbeats so that a lost node is noticed within seconds instead of 45.
const FAST = { CYNODE_NODE_HEARTBEAT_SECONDS: '1', CYNODE_NODE_STALE_SECONDS: '4' };

const dirs: string[] = [];
const runs: CliRun[] = [];
const track = <T extends CliRun>(r: T) => (runs.push(r), r);
async function dir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cynode-e2e-'));
  dirs.push(d);
  return d;
}

beforeAll(async () => {
  await ensureSandboxImage();
});
afterEach(async () => {
  await Promise.all(runs.splice(0).map(stopQuietly));
});
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

class Client {
  constructor(
    readonly url: string,
    readonly token: string,
  ) {}
  async call(path: string, body?: unknown, method = body === undefined ? 'GET' : 'POST'): Promise<any> {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }
}


async function adminOf(server: Served): Promise<Client> {
  return new Client(server.gatewayUrl, (await login(server.gatewayUrl, 'admin', ADMIN)).token!);
}

const finished = (api: Client, taskId: string) =>
  until(`task ${taskId} to end`, async () => {
    const t = await api.call(`/v1/tasks/${taskId}`);
    return t.closed ? t : undefined;
  });

describe('cynode serve with its embedded node', () => {
  it('runs a commands task `echo hello` to completed on the desktop node', async () => {
    const server = track(await serve({ CYNODE_DATA_DIR: await dir(), CYNODE_ADMIN_PASSWORD: ADMIN, ...FAST }));
    const api = await adminOf(server);
    const node = await until('the embedded node to be dispatchable', async () => (await api.call('/v1/nodes')).nodes.find((n: any) => n.dispatchable));
    expect(node.labels).toContain('orchestrator_host');
    expect(node.capability_summary.sandbox_supported).toBe(true);

    const task = await api.call('/v1/tasks', { prompt: 'echo hello', input_mode: 'commands' });
    expect(task.status).toBe('queued');
    expect((await finished(api, task.task_id)).status).toBe('completed');
    const result = await api.call(`/v1/tasks/${task.task_id}/result`);
    expect(result.stdout).toBe('hello\n');
    expect(result.exit_code).toBe(0);
    expect(result.jobs[0].node_id).toBe(node.node_id);
  });
});

describe('a second machine joins with `cynode node`', () => {
  it('is refused with a wrong key, runs jobs beside the desktop node, and its jobs move when it dies', async () => {
    const server = track(await serve({ CYNODE_DATA_DIR: await dir(), CYNODE_ADMIN_PASSWORD: ADMIN, ...FAST }));
    const api = await adminOf(server);
    const { psk } = await api.call('/v1/nodes/join');

    const intruder = track(runCli(['node', '--join', server.controlUrl, '--psk', 'not-the-join-key-at-all', '--host', '127.0.0.1', '--worker-port', '0'], { CYNODE_DATA_DIR: await dir() }));
    expect(await intruder.exited).toEqual({ code: 2, signal: null });
    expect(intruder.stderr).toMatch(/refused the join key/);

    const port = await occupyPort();
    await port.release();
    const remoteDir = await dir();
    const remoteArgs = ['node', '--join', server.controlUrl, '--psk', psk, '--name', 'gpu-box', '--host', '127.0.0.1', '--worker-port', String(port.port)];
    let remote = track(runCli(remoteArgs, { CYNODE_DATA_DIR: remoteDir }));
    await remote.waitForStdout(/Worker API/);
    const nodes = await until('two dispatchable nodes', async () => {
      const list = (await api.call('/v1/nodes')).nodes.filter((n: any) => n.dispatchable);
      return list.length === 2 ? list : undefined;
    });
    const desktop = nodes.find((n: any) => n.node_slug !== 'gpu-box');
    const gpuBox = nodes.find((n: any) => n.node_slug === 'gpu-box');

    // Six short jobs on two nodes of two slots each: both must take work.
    const batch = await Promise.all(Array.from({ length: 6 }, (_, i) => api.call('/v1/tasks', { prompt: `sleep 1; echo job-${i}`, input_mode: 'commands' })));
    for (const t of batch) expect((await finished(api, t.task_id)).status).toBe('completed');
    const ranOn = new Set(await Promise.all(batch.map(async (t) => (await api.call(`/v1/tasks/${t.task_id}/result`)).jobs[0].node_id)));
    expect(ranOn).toEqual(new Set([desktop.node_id, gpuBox.node_id]));

    // Only the box may take the next job; it dies while running it.
    await api.call(`/v1/nodes/${desktop.node_id}:disable`, {});
    const long = await api.call('/v1/tasks', { prompt: 'sleep 6; echo survived', input_mode: 'commands' });
    const running = await until('the job to run on gpu-box', async () => {
      const r = await api.call(`/v1/tasks/${long.task_id}/result`);
      return r.status === 'running' && r.jobs[0].node_id === gpuBox.node_id ? r : undefined;
    });
    const jobId = running.jobs[0].id;
    remote.child.kill('SIGKILL');
    await remote.exited;
    await api.call(`/v1/nodes/${desktop.node_id}:enable`, {});

    // Noticed from missed heartbeats, requeued, and run again on the desktop node.
    const done = await finished(api, long.task_id);
    expect(done.status).toBe('completed');
    const result = await api.call(`/v1/tasks/${long.task_id}/result`);
    expect(result.stdout).toBe('survived\n');
    expect(result.jobs[0].node_id).toBe(desktop.node_id);
    expect(result.jobs[0].attempt).toBe(2);
    expect((await api.call(`/v1/nodes/${gpuBox.node_id}`)).status).toBe('stale');

    // The killed Node Manager left its container behind; its next start removes it.
    remote = track(runCli(remoteArgs, { CYNODE_DATA_DIR: remoteDir }));
    await remote.waitForStdout(/Worker API/);
    await until('the orphan to be reaped', async () => (await jobContainers(jobId)).length === 0, 30_000);
    await until('gpu-box to be active again', async () => (await api.call(`/v1/nodes/${gpuBox.node_id}`)).status === 'active');

    // A clean stop (systemd, Ctrl-C) ends the Node Manager with code 0.
    remote.child.kill('SIGTERM');
    expect(await remote.exited).toEqual({ code: 0, signal: null });
  });
});
