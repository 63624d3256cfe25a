import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/docker';
import { ApiClient, createPostgresDatabase } from '../support/harness';
import { serve, stopQuietly, type Served } from '../support/cli';
import { openSse, type SseFrame } from '../support/sse';
import { until } from '../support/until';

/*
 * Two `cynode serve` processes (the built CLI) on one PostgreSQL: an event appended through one
 * gateway reaches a stream opened on the other (LISTEN/NOTIFY across processes).
 */
describe('run events across two gateway processes on one PostgreSQL', () => {
  const served: Served[] = [];
  const dirs: string[] = [];
  let drop: (() => Promise<void>) | undefined;
  let a: ApiClient;
  let b: ApiClient;

  beforeAll(async () => {
    const db = await createPostgresDatabase();
    drop = db.drop;
    // Both gateways must sign and accept the same access tokens.
    const env = { DATABASE_URL: db.url, CYNODE_MASTER_KEY: randomBytes(32).toString('base64'), CYNODE_ADMIN_PASSWORD: 'admin-password-1', CYNODE_EMBEDDED_NODE: '0' };
    for (let i = 0; i < 2; i++) {
      const dir = await tempDir('cynode-runs-proc-');
      dirs.push(dir);
      // One after the other: the first creates the schema and the admin.
      served.push(await serve({ ...env, CYNODE_DATA_DIR: dir }));
    }
    a = new ApiClient(served[0]!.gatewayUrl);
    b = new ApiClient(served[1]!.gatewayUrl);
  });
  afterAll(async () => {
    for (const s of served) await stopQuietly(s);
    await drop?.();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('a stream on one gateway receives what is appended through the other, then done', async () => {
    expect(served[0]!.gatewayUrl).not.toBe(served[1]!.gatewayUrl);
    const token = (await a.login('admin', 'admin-password-1')).access_token;
    const task = (await a.call('/v1/tasks', { token, body: { prompt: 'echo x', input_mode: 'commands' } })).body;
    const run = (await a.call('/v1/runs', { token, body: { task_id: task.id, status: 'running' } })).body;

    const frames: SseFrame[] = [];
    const sse = await openSse(`${b.baseUrl}/v1/runs/${run.id}/events/stream?heartbeat_seconds=1`, { token, onFrame: (f) => void frames.push(f) });
    expect(sse.status).toBe(200);
    await until('the replayed first event', async () => frames.length >= 1);

    for (let i = 1; i <= 5; i++) {
      const res = await a.call(`/v1/runs/${run.id}/logs`, { token, body: { entries: [{ stream: 'stdout', message: `from A ${i}` }] } });
      expect(res.status).toBe(201);
    }
    await until('five live lines on B', async () => frames.filter((f) => f.event === 'run.event').length >= 6);
    // B's listener also hears its own writes; A's stream sees B's.
    const onA: SseFrame[] = [];
    const sseA = await openSse(`${a.baseUrl}/v1/runs/${run.id}/events/stream?after=6`, { token, onFrame: (f) => void onA.push(f) });
    await b.call(`/v1/runs/${run.id}/logs`, { token, body: { entries: [{ stream: 'stderr', message: 'from B' }] } });
    await b.call(`/v1/runs/${run.id}`, { token, method: 'PATCH', body: { status: 'completed' } });
    await sse.ended;
    await sseA.ended;

    const events = frames.filter((f) => f.event === 'run.event').map((f) => JSON.parse(f.data));
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(events.slice(1, 6).map((e) => e.event.message)).toEqual([1, 2, 3, 4, 5].map((i) => `from A ${i}`));
    expect(JSON.parse(frames.at(-1)!.data)).toEqual({ run_id: run.id, last_seq: 8, status: 'completed' });
    expect(onA.map((f) => [f.event, f.id])).toEqual([
      ['run.event', '7'],
      ['run.event', '8'],
      ['done', undefined],
    ]);
  });
});
