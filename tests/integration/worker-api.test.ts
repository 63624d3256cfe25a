import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRunRequest, LogLine } from '../../node-manager/contract/worker-api';
import { DockerRunner } from '../../node-manager/sandbox/docker-runner';
import type { SandboxRunner, SandboxRunSpec } from '../../node-manager/sandbox/runner';
import { startWorkerApi, type WorkerApi, type WorkerApiOptions } from '../../node-manager/worker-api/server';
import { NodeCallError, NodeClient } from '../../server/nodes/node-client';
import { ApiClient } from '../support/harness';
import { SANDBOX_IMAGE, ensureSandboxImage, instanceContainers, jobContainers, tempDir, waitForRunningContainer } from '../support/docker';

const TOKEN = `worker-token-${randomUUID()}`;

/** A real DockerRunner that also remembers which jobs it was asked to run. */
class CountingRunner implements SandboxRunner {
  readonly runs: string[] = [];
  constructor(private readonly inner: DockerRunner) {}
  check = () => this.inner.check();
  info = () => this.inner.info();
  run(spec: SandboxRunSpec, onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void) {
    this.runs.push(spec.jobId);
    return this.inner.run(spec, onOutput);
  }
  stop = (jobId: string) => this.inner.stop(jobId);
  stopAll = () => this.inner.stopAll();
  reapOrphans = () => this.inner.reapOrphans();
  settled = () => this.inner.settled();
  runsOf = (jobId: string) => this.runs.filter((id) => id === jobId).length;
}

interface Node {
  api: WorkerApi;
  client: ApiClient;
  runner: CountingRunner;
  stateDir: string;
  instanceId: string;
}

const dirs: string[] = [];
const instances: string[] = [];

async function startNode(overrides: Partial<WorkerApiOptions> & { stateDir?: string; token?: () => string | null } = {}): Promise<Node> {
  const stateDir = overrides.stateDir ?? (await tempDir('cynode-worker-'));
  const instanceId = `test-${randomUUID()}`;
  dirs.push(stateDir);
  instances.push(instanceId);
  const runner = new CountingRunner(new DockerRunner({ instanceId, jobsDir: join(stateDir, 'jobs'), image: SANDBOX_IMAGE }));
  const api = await startWorkerApi({
    host: '127.0.0.1',
    port: 0,
    runner,
    nodeSlug: 'test-node',
    defaultImage: SANDBOX_IMAGE,
    getBearerToken: overrides.token ?? (() => TOKEN),
    stateDir,
    logLevel: 'silent',
    ...overrides,
  });
  return { api, client: new ApiClient(api.url), runner, stateDir, instanceId };
}

const job = (command: string[], sandbox: Record<string, unknown> = {}, jobId = `job-${randomUUID()}`) => ({
  version: 1 as const,
  task_id: `task-${randomUUID()}`,
  job_id: jobId,
  sandbox: { command, ...sandbox },
});

/** Polls until the node reports the job as running (its container exists and runs). */
async function untilRunning(node: Node, jobId: string): Promise<void> {
  await waitForRunningContainer(jobId);
  expect(node.api.runningJobIds()).toContain(jobId);
}

describe('Worker API with a real Docker runner', () => {
  let node: Node;
  beforeAll(async () => {
    await ensureSandboxImage();
    node = await startNode();
  });

  afterAll(async () => {
    await node?.api.close();
    // Whatever the tests did, no sandbox container of theirs survives.
    for (const id of instances) expect(await instanceContainers(id)).toEqual([]);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const run = (body: unknown, n: Node = node) => n.client.call('/v1/worker/jobs:run', { token: TOKEN, body });

  const workerClient = new NodeClient();
  /** jobs:run through the orchestrator's client, streaming the job's lines into `lines`. */
  const follow = (n: Node, body: JobRunRequest, onLog: (line: LogLine) => void = () => {}) => {
    const lines: LogLine[] = [];
    const result = workerClient.run({ url: n.api.url, token: TOKEN }, body, {
      timeoutMs: 60_000,
      onLog: (line) => {
        lines.push(line);
        onLog(line);
      },
    });
    return { lines, result };
  };
  /** A file the job waits for in its workspace: lets a test decide when the job goes on. */
  const openGate = (n: Node, jobId: string) => writeFile(join(n.stateDir, 'jobs', jobId, 'workspace', 'go'), '');
  const WAIT_FOR_GATE = 'while [ ! -e /workspace/go ]; do sleep 0.05; done';

  it('streams every output line in order with a dense seq, then the result', async () => {
    const script = 'i=1; while [ $i -le 30 ]; do echo "line $i"; if [ $((i % 10)) -eq 0 ]; then echo "warn $i" >&2; fi; sleep 0.02; i=$((i+1)); done';
    const body = job(['sh', '-c', script]);
    const { lines, result } = follow(node, body);
    const res = await result;
    expect(res).toMatchObject({ status: 'completed', exit_code: 0, job_id: body.job_id });
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 33 }, (_, i) => i + 1));
    const out = lines.filter((l) => l.stream === 'stdout').map((l) => l.text);
    expect(out).toEqual(Array.from({ length: 30 }, (_, i) => `line ${i + 1}`));
    expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.text)).toEqual(['warn 10', 'warn 20', 'warn 30']);
    expect(res.stdout).toBe(out.map((t) => `${t}\n`).join(''));

    // Coming back later with the last seq it has, a caller gets only the rest, then the same result.
    const again = follow(node, { ...body, log_after: 25 });
    expect(await again.result).toEqual(res);
    expect(again.lines).toEqual(lines.slice(25));
    const nothingNew = follow(node, { ...body, log_after: 33 });
    expect(await nothingNew.result).toEqual(res);
    expect(nothingNew.lines).toEqual([]);
    // The plain JSON answer is what it always was.
    expect(await workerClient.run({ url: node.api.url, token: TOKEN }, body, { timeoutMs: 60_000 })).toEqual(res);
    expect(node.runner.runsOf(body.job_id)).toBe(1);
  });

  it('delivers a line while the job still runs', async () => {
    const body = job(['sh', '-c', `echo first; ${WAIT_FOR_GATE}; echo second`], { timeout_seconds: 60 });
    let runningAtFirstLine: boolean | undefined;
    const { lines, result } = follow(node, body, (line) => {
      if (line.text !== 'first') return;
      runningAtFirstLine = node.api.runningJobIds().includes(body.job_id);
      void openGate(node, body.job_id);
    });
    expect(await result).toMatchObject({ status: 'completed', stdout: 'first\nsecond\n' });
    expect(runningAtFirstLine).toBe(true);
    expect(lines.map((l) => l.text)).toEqual(['first', 'second']);
  });

  it('a caller re-attaching to a running job with log_after gets the later kept lines, then live ones, none twice', async () => {
    const body = job(['sh', '-c', `for i in 1 2 3 4 5; do echo "a$i"; done; ${WAIT_FOR_GATE}; for i in 6 7 8 9 10; do echo "b$i"; done`], { timeout_seconds: 60 });
    let firstHasFive!: () => void;
    const fiveLines = new Promise<void>((r) => (firstHasFive = r));
    const first = follow(node, body, (line) => line.seq === 5 && firstHasFive());
    await fiveLines;

    let secondHasReplay!: () => void;
    const replayed = new Promise<void>((r) => (secondHasReplay = r));
    const second = follow(node, { ...body, log_after: 3 }, (line) => line.seq === 5 && secondHasReplay());
    await replayed;
    await openGate(node, body.job_id);

    const [a, b] = await Promise.all([first.result, second.result]);
    expect(b).toEqual(a);
    expect(a.status).toBe('completed');
    expect(first.lines.map((l) => l.text)).toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'b6', 'b7', 'b8', 'b9', 'b10']);
    expect(second.lines).toEqual(first.lines.slice(3));
    expect(node.runner.runsOf(body.job_id)).toBe(1);
  });

  it('streams heartbeats through silence and ends with a result line that says how far the log went', async () => {
    const beating = await startNode({ streamHeartbeatMs: 100 });
    try {
      const body = job(['sh', '-c', 'sleep 1; echo awake']);
      const res = await fetch(`${beating.api.url}/v1/worker/jobs:run`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', accept: 'application/x-ndjson' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('application/x-ndjson');
      const entries = (await res.text())
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { type: string; [k: string]: unknown });
      expect(entries.some((e) => e.type === 'heartbeat')).toBe(true);
      expect(entries.filter((e) => e.type !== 'heartbeat')).toEqual([
        { type: 'log', seq: 1, stream: 'stdout', text: 'awake' },
        expect.objectContaining({ type: 'result', last_seq: 1, dropped: 0, result: expect.objectContaining({ status: 'completed', stdout: 'awake\n' }) }),
      ]);
    } finally {
      await beating.api.close();
    }
  });

  it('answers a refused streaming call with its status and problem document, not a stream', async () => {
    const body = job(['true'], { network_policy: 'bridge' });
    const refused = await workerClient.run({ url: node.api.url, token: TOKEN }, body, { timeoutMs: 10_000, onLog: () => {} }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NodeCallError);
    expect(refused).toMatchObject({ status: 400, transient: false });
    expect((refused as Error).message).toContain('restricted, none');

    const wrongToken = await workerClient.run({ url: node.api.url, token: `${TOKEN}x` }, job(['true']), { timeoutMs: 10_000, onLog: () => {} }).catch((e: unknown) => e);
    expect(wrongToken).toMatchObject({ status: 401 });
    expect((wrongToken as Error).message).not.toContain(TOKEN);

    const badAfter = await run({ ...job(['true']), log_after: -1 });
    expect(badAfter.status).toBe(400);
    expect(node.runner.runsOf(body.job_id)).toBe(0);
  });

  it('answers /healthz and /readyz without credentials', async () => {
    const health = await node.client.call('/healthz');
    expect(health.status).toBe(200);
    expect(health.text).toBe('ok');
    const ready = await node.client.call('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.text).toBe('ready');
  });

  it('serves its own OpenAPI document listing its routes, behind the bearer token', async () => {
    expect((await node.client.call('/v1/openapi.json')).status).toBe(401);
    const doc = await node.client.call('/v1/openapi.json', { token: TOKEN });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.body.info.title).toBe('CyNode Worker API');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/worker/jobs:run']));
  });

  it('refuses a missing or wrong bearer token with 401', async () => {
    const body = job(['echo', 'never']);
    const none = await node.client.call('/v1/worker/jobs:run', { body });
    const wrong = await node.client.call('/v1/worker/jobs:run', { token: `${TOKEN}x`, body });
    const otherScheme = await node.client.call('/v1/worker/jobs:run', { body, headers: { authorization: `Basic ${TOKEN}` } });
    for (const res of [none, wrong, otherScheme]) {
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    expect(node.runner.runsOf(body.job_id)).toBe(0);
  });

  it('answers 503 to /v1 calls and /readyz until the node has its token', async () => {
    let token: string | null = null;
    const unconfigured = await startNode({ token: () => token });
    try {
      const res = await run(job(['echo', 'never']), unconfigured);
      expect(res.status).toBe(503);
      expect(res.body.detail).toBe('node not configured yet');
      const ready = await unconfigured.client.call('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.text).toContain('not configured');
      expect((await unconfigured.client.call('/healthz')).status).toBe(200);

      token = TOKEN;
      expect((await unconfigured.client.call('/readyz')).status).toBe(200);
      expect((await run(job(['true']), unconfigured)).body.status).toBe('completed');
    } finally {
      await unconfigured.api.close();
    }
  });

  it('runs a job and answers its result', async () => {
    const body = job(['sh', '-c', 'echo hello; echo warn >&2'], { network_policy: 'restricted' });
    const res = await run(body);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      version: 1,
      task_id: body.task_id,
      job_id: body.job_id,
      node_slug: 'test-node',
      status: 'completed',
      exit_code: 0,
      stdout: 'hello\n',
      stderr: 'warn\n',
      truncated: { stdout: false, stderr: false },
    });
    expect(Date.parse(res.body.ended_at)).toBeGreaterThanOrEqual(Date.parse(res.body.started_at));
    // The container goes right after the answer.
    await node.runner.settled();
    expect(await jobContainers(body.job_id)).toEqual([]);
  });

  it('answers a failing command with 200 and status failed', async () => {
    const res = await run(job(['sh', '-c', 'exit 7'], { network_policy: 'none' }));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'failed', exit_code: 7 });
  });

  it('refuses unknown fields with 400', async () => {
    const top = await run({ ...job(['true']), priority: 'high' });
    expect(top.status).toBe(400);
    expect(top.body.detail).toContain('priority');
    const inner = await run(job(['true'], { privileged: true }));
    expect(inner.status).toBe(400);
    expect(inner.body.detail).toContain('privileged');
  });

  it('refuses a network policy other than restricted or none, naming the allowed ones', async () => {
    const body = job(['true'], { network_policy: 'bridge' });
    const res = await run(body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.detail).toContain('restricted, none');
    expect(node.runner.runsOf(body.job_id)).toBe(0);
  });

  it('refuses ids made of dots, which would name a parent directory', async () => {
    const res = await run(job(['true'], {}, '..'));
    expect(res.status).toBe(400);
  });

  it('caps the job timeout at the node maximum', async () => {
    const capped = await startNode({ maxTimeoutSeconds: 2 });
    try {
      const res = await run(job(['sleep', '600'], { timeout_seconds: 600 }), capped);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('timeout');
      expect(res.body).not.toHaveProperty('exit_code');
    } finally {
      await capped.api.close();
    }
  });

  it('answers 413 with a problem document to a body over the cap', async () => {
    const small = await startNode({ maxRequestBytes: 4096 });
    try {
      const res = await run(job(['echo', 'x'.repeat(8000)]), small);
      expect(res.status).toBe(413);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(small.runner.runs).toEqual([]);
    } finally {
      await small.api.close();
    }
  });

  it('runs a job_id once: concurrent requests share one container and one result, a later one gets it retained', async () => {
    const body = job(['sh', '-c', 'sleep 1; echo "ran $CYNODE_JOB_ID"']);
    const first = run(body);
    const second = run(body);
    await waitForRunningContainer(body.job_id);
    expect(await jobContainers(body.job_id)).toHaveLength(1);
    const [a, b] = await Promise.all([first, second]);
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ status: 'completed', stdout: `ran ${body.job_id}\n` });
    expect(b.body).toEqual(a.body);
    expect(node.runner.runsOf(body.job_id)).toBe(1);

    const again = await run(body);
    expect(again.body).toEqual(a.body);
    expect(node.runner.runsOf(body.job_id)).toBe(1);
  });

  it('stops a running job: jobs:stop says stopping, the run answers canceled, a second stop says not_running', async () => {
    const body = job(['sleep', '600']);
    const pending = run(body);
    await untilRunning(node, body.job_id);
    const stop = await node.client.call('/v1/worker/jobs:stop', { token: TOKEN, body: { version: 1, task_id: body.task_id, job_id: body.job_id } });
    expect(stop.status).toBe(200);
    expect(stop.body).toEqual({ version: 1, job_id: body.job_id, status: 'stopping' });
    const res = await pending;
    expect(res.body.status).toBe('canceled');
    expect(res.body).not.toHaveProperty('exit_code');
    await node.runner.settled();
    expect(await jobContainers(body.job_id)).toEqual([]);

    const again = await node.client.call('/v1/worker/jobs:stop', { token: TOKEN, body: { version: 1, job_id: body.job_id } });
    expect(again.body.status).toBe('not_running');
    // The canceled result is retained like any other.
    expect((await run(body)).body).toEqual(res.body);
  });

  it('stops every running job on the orchestrator stop-all', async () => {
    const a = job(['sleep', '600']);
    const b = job(['sleep', '600']);
    const pending = [run(a), run(b)];
    await Promise.all([untilRunning(node, a.job_id), untilRunning(node, b.job_id)]);
    const res = await node.client.call('/v1/worker/admin/stop-all-orchestrator-directed', { token: TOKEN, body: { version: 1 } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 1, stopped_services: [] });
    expect([...res.body.stopped_jobs].sort()).toEqual([a.job_id, b.job_id].sort());
    expect((await Promise.all(pending)).map((r) => r.body.status)).toEqual(['canceled', 'canceled']);
    expect(node.api.runningJobIds()).toEqual([]);
  });

  it('refuses a job beyond its concurrency with 429 and Retry-After, but still answers the running job_id', async () => {
    const one = await startNode({ maxConcurrency: 1 });
    try {
      const busy = job(['sleep', '600']);
      const pending = run(busy, one);
      await untilRunning(one, busy.job_id);

      const other = job(['echo', 'later']);
      const refused = await run(other, one);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers.get('content-type')).toContain('application/problem+json');
      expect(one.runner.runsOf(other.job_id)).toBe(0);

      // The same job again is not new work: it waits for the running one.
      const same = run(busy, one);
      await one.api.stopAll();
      const [r1, r2] = await Promise.all([pending, same]);
      expect(r1.body.status).toBe('canceled');
      expect(r2.body).toEqual(r1.body);

      // Capacity is free again.
      expect((await run(other, one)).body).toMatchObject({ status: 'completed', stdout: 'later\n' });
    } finally {
      await one.api.close();
    }
  });

  it('after a restart answers a job that was running as interrupted, and never runs it again', async () => {
    const first = await startNode();
    // Bounded, so a node that wrongly ran it again fails the assertion below rather than the test's time.
    const body = job(['sleep', '600'], { timeout_seconds: 20 });
    const pending = run(body, first);
    await untilRunning(first, body.job_id);
    await first.api.close();
    // The caller that was waiting learns the job ended with the node, not that it succeeded.
    const answered = await pending;
    expect(answered.body).toMatchObject({ status: 'failed', exit_code: -1 });
    expect(answered.body.stderr).toMatch(/^interrupted: /);
    expect(await jobContainers(body.job_id)).toEqual([]);

    const second = await startNode({ stateDir: first.stateDir });
    try {
      const res = await run(body, second);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        job_id: body.job_id,
        task_id: body.task_id,
        status: 'failed',
        exit_code: -1,
        stderr: 'interrupted: the node manager restarted while this job ran',
      });
      expect(second.runner.runs).toEqual([]);
      expect(await jobContainers(body.job_id)).toEqual([]);
    } finally {
      await second.api.close();
    }
  });

  it('keeps finished results across a restart', async () => {
    const first = await startNode();
    const body = job(['echo', 'before restart']);
    const done = await run(body, first);
    await first.api.close();
    const second = await startNode({ stateDir: first.stateDir });
    try {
      expect((await run(body, second)).body).toEqual(done.body);
      // Its output lines are kept with it.
      const followed = follow(second, body);
      expect(await followed.result).toEqual(done.body);
      expect(followed.lines).toEqual([{ seq: 1, stream: 'stdout', text: 'before restart' }]);
      expect(second.runner.runs).toEqual([]);
    } finally {
      await second.api.close();
    }
  });

  it('forgets results after the retention period', async () => {
    const forgetful = await startNode({ resultRetentionMs: 300 });
    try {
      const body = job(['echo', 'once']);
      await run(body, forgetful);
      // Once purged, the job_id is unknown again and runs anew (retention, then purge).
      const deadline = Date.now() + 20_000;
      while (forgetful.runner.runsOf(body.job_id) < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        await run(body, forgetful);
      }
      expect(forgetful.runner.runsOf(body.job_id)).toBe(2);
    } finally {
      await forgetful.api.close();
    }
  });
});

describe('NodeClient on a stream that breaks the contract', () => {
  /** A node stand-in that answers jobs:run as a stream with whatever a test writes. */
  async function fakeNode(write: (res: http.ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      write(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
    };
  }
  const body = job(['true']);

  it('fails as transient when the stream stays silent past the idle limit', async () => {
    const silent = await fakeNode(() => {});
    try {
      const err = await new NodeClient({ streamIdleMs: 300 }).run({ url: silent.url, token: TOKEN }, body, { timeoutMs: 60_000, onLog: () => {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeCallError);
      expect(err).toMatchObject({ transient: true, code: 'IDLE' });
    } finally {
      await silent.close();
    }
  });

  it('fails as not transient on a line off the contract, after handing over the good lines before it', async () => {
    const broken = await fakeNode((res) => {
      res.write('{"type":"log","seq":1,"stream":"stdout","text":"fine"}\n');
      res.write('{"type":"log","seq":"two","stream":"stdout","text":"bad"}\n');
    });
    try {
      const lines: LogLine[] = [];
      const err = await new NodeClient().run({ url: broken.url, token: TOKEN }, body, { timeoutMs: 60_000, onLog: (l) => lines.push(l) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeCallError);
      expect(err).toMatchObject({ transient: false });
      expect(lines).toEqual([{ seq: 1, stream: 'stdout', text: 'fine' }]);
    } finally {
      await broken.close();
    }
  });

  it('fails as transient when the stream ends before the result', async () => {
    const cut = await fakeNode((res) => res.end('{"type":"heartbeat"}\n'));
    try {
      const err = await new NodeClient().run({ url: cut.url, token: TOKEN }, body, { timeoutMs: 60_000, onLog: () => {} }).catch((e: unknown) => e);
      expect(err).toMatchObject({ transient: true });
    } finally {
      await cut.close();
    }
  });
});
