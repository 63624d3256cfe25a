import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, createPostgresDatabase } from '../support/harness';
import { login, serve, stopQuietly, type Served } from '../support/cli';

const WRITERS = 4;
const WRITE_FOR_MS = 1_500;

/**
 * Creates API keys until the server goes away, and remembers every key the server acknowledged
 * with 201. A request cut off by the kill was never acknowledged, so the caller cannot have
 * relied on it; those are not counted.
 */
async function writer(baseUrl: string, token: string, n: number, acknowledged: string[]): Promise<void> {
  for (let i = 0; ; i++) {
    let res: Response;
    try {
      res = await fetch(`${baseUrl}/v1/api-keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `writer-${n}-${i}` }),
      });
    } catch {
      return;
    }
    let body: { id?: string };
    try {
      body = (await res.json()) as { id?: string };
    } catch {
      return;
    }
    if (res.status !== 201) throw new Error(`writer ${n}: ${res.status} ${JSON.stringify(body)}`);
    acknowledged.push(body.id!);
  }
}

let live: Served | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await stopQuietly(live);
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.each(['pglite', 'postgres'] as const)('kill -9 on %s', (kind) => {
  it('loses no acknowledged write, and the restarted server serves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cynode-durability-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const env: Record<string, string> = { CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: ADMIN_PASSWORD };
    if (kind === 'postgres') {
      const db = await createPostgresDatabase();
      cleanups.push(db.drop);
      env.DATABASE_URL = db.url;
    }

    live = await serve(env);
    const { token } = await login(live.gatewayUrl, 'admin', ADMIN_PASSWORD);
    const acknowledged: string[] = [];
    const writing = Promise.all(Array.from({ length: WRITERS }, (_, n) => writer(live!.gatewayUrl, token!, n, acknowledged)));
    await new Promise((r) => setTimeout(r, WRITE_FOR_MS));
    live.child.kill('SIGKILL');
    expect((await live.exited).signal).toBe('SIGKILL');
    await writing;
    // Enough writes to have been cut off mid-stream rather than between two quiet moments.
    expect(acknowledged.length).toBeGreaterThan(20);

    live = await serve(env);
    const after = await login(live.gatewayUrl, 'admin', ADMIN_PASSWORD);
    expect(after.status).toBe(200);
    const res = await fetch(`${live.gatewayUrl}/v1/api-keys`, { headers: { authorization: `Bearer ${after.token}` } });
    expect(res.status).toBe(200);
    const stored = new Set(((await res.json()) as { api_keys: Array<{ id: string }> }).api_keys.map((k) => k.id));
    const lost = acknowledged.filter((id) => !stored.has(id));
    expect(lost).toEqual([]);

    // And it takes new writes after recovery.
    const more = await fetch(`${live.gatewayUrl}/v1/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${after.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'after-recovery' }),
    });
    expect(more.status).toBe(201);
    live.child.kill('SIGTERM');
    expect(await live.exited).toEqual({ code: 0, signal: null });
  });
});
