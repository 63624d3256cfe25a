/**
 * Task create -> `completed` for `echo hello` through the orchestrator (gateway, queue,
 * dispatcher, Worker API, dockerode) beside a raw `docker run --rm` of the same image, at 1, 8
 * and 32 concurrent tasks. Needs a Docker engine and the sandbox image (build/sandbox-image.sh).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serve } from '../support/cli';
import { ms, summarize, type Summary } from './stats';

const run = promisify(execFile);
const IMAGE = process.env.CYNODE_SANDBOX_IMAGE || 'cynode-sandbox:latest';
const SEQUENTIAL = Number(process.env.BENCH_SAMPLES || 20);

async function rawDockerRun(): Promise<number> {
  const t0 = performance.now();
  const { stdout } = await run('docker', ['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'echo hello']);
  if (stdout.trim() !== 'hello') throw new Error(`docker run printed ${JSON.stringify(stdout)}`);
  return performance.now() - t0;
}

interface Api {
  url: string;
  token: string;
}

async function orchestratedTask(api: Api, pollMs = 5): Promise<number> {
  const t0 = performance.now();
  const created = await fetch(`${api.url}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'echo hello', input_mode: 'commands' }),
  });
  if (created.status !== 201) throw new Error(`create answered ${created.status}`);
  const { task_id } = (await created.json()) as { task_id: string };
  for (;;) {
    const res = await fetch(`${api.url}/v1/tasks/${task_id}`, { headers: { authorization: `Bearer ${api.token}` } });
    const task = (await res.json()) as { status: string; failure_reason?: string };
    if (task.status === 'completed') return performance.now() - t0;
    if (['failed', 'canceled'].includes(task.status)) throw new Error(`task ${task_id} ${task.status}: ${task.failure_reason ?? ''}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

async function sequential(f: () => Promise<number>, n: number): Promise<{ summary: Summary; errors: number }> {
  const samples: number[] = [];
  let errors = 0;
  for (let i = 0; i < n; i++) await f().then((t) => samples.push(t), () => errors++);
  return { summary: summarize(samples), errors };
}

async function concurrent(f: () => Promise<number>, n: number): Promise<{ summary: Summary; errors: number; wallMs: number }> {
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: n }, f));
  const samples = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  return { summary: summarize(samples), errors: results.length - samples.length, wallMs: performance.now() - t0 };
}

function row(label: string, s: Summary, errors: number, extra = ''): string {
  return `| ${label.padEnd(34)} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} | ${String(errors).padStart(6)} | ${extra}`;
}

export async function sandboxBench(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cynode-bench-'));
  // The built appliance in its own process, as `npm start` runs it; the local node may run as
  // many jobs at once as the widest round, so the comparison is about overhead, not a queue.
  const server = await serve({ CYNODE_DATA_DIR: dataDir, CYNODE_ADMIN_PASSWORD: 'bench-password-1', CYNODE_NODE_MAX_JOBS: '32', CYNODE_MAX_CONCURRENT_REQUESTS: '10000', CYNODE_SANDBOX_IMAGE: IMAGE });
  try {
    const login = await fetch(`${server.gatewayUrl}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'admin', password: 'bench-password-1' }) });
    const api: Api = { url: server.gatewayUrl, token: ((await login.json()) as { access_token: string }).access_token };
    // Wait for the embedded node to be dispatchable, and warm both paths once.
    for (let i = 0; i < 100; i++) {
      if (await orchestratedTask(api).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await rawDockerRun();

    console.log(`image ${IMAGE}; ${SEQUENTIAL} sequential samples; latency = create -> completed (orchestrator) or process start -> exit (docker run)\n`);
    console.log('| run                                |    p50    |    p95    |    p99    | errors | ');
    console.log('|---|---|---|---|---|---|');
    const raw1 = await sequential(rawDockerRun, SEQUENTIAL);
    const orch1 = await sequential(() => orchestratedTask(api), SEQUENTIAL);
    console.log(row('docker run --rm, 1 at a time', raw1.summary, raw1.errors));
    console.log(row('CyNode task, 1 at a time', orch1.summary, orch1.errors, `ratio p50 ${(orch1.summary.p50 / raw1.summary.p50).toFixed(2)}, p95 ${(orch1.summary.p95 / raw1.summary.p95).toFixed(2)}`));
    for (const n of [8, 32]) {
      const raw = await concurrent(rawDockerRun, n);
      // 20 ms between polls: 32 clients polling every 5 ms would load this 2-core box themselves.
      const orch = await concurrent(() => orchestratedTask(api, 20), n);
      console.log(row(`docker run --rm, ${n} at once`, raw.summary, raw.errors, `all done in ${raw.wallMs.toFixed(0)} ms`));
      console.log(row(`CyNode task, ${n} at once`, orch.summary, orch.errors, `all done in ${orch.wallMs.toFixed(0)} ms; ratio p50 ${(orch.summary.p50 / raw.summary.p50).toFixed(2)}, wall ${(orch.wallMs / raw.wallMs).toFixed(2)}`));
    }
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    await rm(dataDir, { recursive: true, force: true });
  }
}
