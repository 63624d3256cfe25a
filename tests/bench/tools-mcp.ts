/**
 * An MCP tools/call of a read-only tool (`task.list`) through CyNode's /mcp (HTTP, bearer
 * authentication, policy decision, argument check, the service, the tool-call audit) beside the
 * same service call made directly in process, on the same database with the same tasks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fileURLToPath } from 'node:url';
import { runnerImport } from 'vite';
import { summarize } from './stats';
import type * as Stack from './mcp-stack';

const SAMPLES = Number(process.env.BENCH_SAMPLES || 300);
const TASKS = 20;
const PASSWORD = 'bench-password-1';
const ms = (n: number) => `${n.toFixed(2)} ms`;

async function timed(one: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await one();
  return performance.now() - t0;
}

export async function toolsMcpBench(): Promise<void> {
  // Through Vite's module runner: the server's sources use import.meta.glob (migrations), which tsx does not know.
  const stack = fileURLToPath(new URL('./mcp-stack.ts', import.meta.url));
  const { identityServices, startCynode, loadConfig, TaskService } = (await runnerImport<typeof Stack>(stack, { configFile: false, logLevel: 'silent' })).module;
  const dataDir = await mkdtemp(join(tmpdir(), 'cynode-bench-mcp-'));
  const config = loadConfig({}, { dataDir, host: '127.0.0.1', gatewayPort: 0, controlPort: 0, adminPassword: PASSWORD, logLevel: 'silent', embeddedNode: false });
  const cynode = await startCynode(config);
  const client = new Client({ name: 'bench', version: '1.0.0' });
  try {
    const api = async (path: string, token: string | undefined, body: unknown) => {
      const res = await fetch(`${cynode.gatewayUrl}${path}`, {
        method: 'POST',
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (res.status >= 300) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as Record<string, unknown>;
    };
    const token = (await api('/v1/auth/login', undefined, { handle: 'admin', password: PASSWORD })).access_token as string;
    const key = (await api('/v1/api-keys', token, { name: 'bench' })).key as string;
    // Queued tasks (no node): listing them is the work measured on both sides.
    for (let i = 0; i < TASKS; i++) await api('/v1/tasks', token, { prompt: `echo ${i}`, input_mode: 'commands' });

    await client.connect(new StreamableHTTPClientTransport(new URL(`${cynode.gatewayUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
    const viaMcp = async () => {
      const r = await client.callTool({ name: 'task.list', arguments: { limit: 50 } });
      if (r.isError) throw new Error(JSON.stringify(r.content));
    };

    // The same service, built on the same database, called as the same user.
    const identity = identityServices(cynode.db, join(dataDir, 'unused-password-file'));
    const admin = (await cynode.db.query<{ id: string }>(`SELECT id FROM users WHERE handle = 'admin'`))[0]!;
    const tasks = new TaskService(cynode.db, identity.authz, config, { stopJobs: () => {} });
    const principal = { userId: admin.id, handle: 'admin', via: 'api_key' as const };
    const ctx = { requestId: 'bench', ip: '127.0.0.1', userAgent: 'bench' };
    const direct = async () => {
      const page = await tasks.list(principal, { limit: 50 }, ctx);
      if (page.tasks.length !== TASKS) throw new Error(`expected ${TASKS} tasks, got ${page.tasks.length}`);
    };

    for (let i = 0; i < 30; i++) {
      await viaMcp();
      await direct();
    }
    // Alternated, so that a change in the machine's load during the run weighs on both sides alike.
    const mcp: number[] = [];
    const inProcess: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      mcp.push(await timed(viaMcp));
      inProcess.push(await timed(direct));
    }
    const m = summarize(mcp);
    const d = summarize(inProcess);
    console.log(`\nMCP tools/call task.list (${TASKS} tasks) vs TaskService.list in process, ${SAMPLES} sequential calls each, alternating`);
    console.log(`  in process  p50 ${ms(d.p50)}  p95 ${ms(d.p95)}  p99 ${ms(d.p99)}`);
    console.log(`  via /mcp    p50 ${ms(m.p50)}  p95 ${ms(m.p95)}  p99 ${ms(m.p99)}`);
    console.log(`  added       p50 ${ms(m.p50 - d.p50)}  p95 ${ms(m.p95 - d.p95)}  p99 ${ms(m.p99 - d.p99)}  (target: p50 < 5 ms added)`);
  } finally {
    await client.close().catch(() => {});
    await cynode.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
