import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config/config';
import { startCynode, type Cynode } from '../../server/app';
import { ADMIN_PASSWORD, DB_KINDS, createPostgresDatabase } from '../support/harness';
import { freePort } from '../support/ports';

/*
 * A first start, watched from outside as a client or a supervisor watches it: the ports open
 * before the first-run admin, the dispatcher and the ledger hub exist, so until then every route
 * but health answers 503 with Retry-After and /healthz says `starting`. A client that signs in at
 * the first 200 gets in.
 */

interface Seen {
  status: number;
  text: string;
  retryAfter: string | null;
}

/** One answer, or null while nothing listens yet. */
async function ask(url: string, init?: RequestInit): Promise<Seen | null> {
  try {
    const res = await fetch(url, init);
    return { status: res.status, text: await res.text(), retryAfter: res.headers.get('retry-after') };
  } catch {
    return null;
  }
}

describe.each(DB_KINDS)('a first start on %s', (kind) => {
  it('answers 503 `starting` until it has started, and signs in at the first 200 of /healthz', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'cynode-start-'));
    const pgDb = kind === 'postgres' ? await createPostgresDatabase() : undefined;
    const [gatewayPort, controlPort] = [await freePort(), await freePort()];
    const config = loadConfig({}, { dataDir, host: '127.0.0.1', gatewayPort, controlPort, databaseUrl: pgDb?.url, adminPassword: ADMIN_PASSWORD, logLevel: 'silent', embeddedNode: false });
    const gateway = `http://127.0.0.1:${gatewayPort}`;
    const signIn = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'admin', password: ADMIN_PASSWORD }) };

    let failed: unknown;
    let cynode: Cynode | undefined;
    const starting = startCynode(config).then(
      (c) => (cynode = c),
      (err: unknown) => (failed = err),
    );
    // Answers given while the server was still starting, and every sign-in answer.
    const early: Seen[] = [];
    const logins: Seen[] = [];
    try {
      for (;;) {
        if (failed) throw failed;
        // What clients that do not wait for health meet; asked before /healthz, so that when
        // /healthz still says `starting` these were answered while starting too.
        const login = await ask(`${gateway}/v1/auth/login`, signIn);
        const control = await ask(`http://127.0.0.1:${controlPort}/v1/nodes/config`);
        if (login) logins.push(login);
        const health = await ask(`${gateway}/healthz`);
        if (health?.status === 200) break;
        for (const seen of [control, health]) if (seen) early.push(seen);
        await new Promise((r) => setTimeout(r, 5));
      }
      const login = await ask(`${gateway}/v1/auth/login`, signIn);
      expect(login?.status, login?.text).toBe(200);
      for (const seen of early) {
        expect(seen.status, seen.text).toBe(503);
        expect(seen.retryAfter).toBe('1');
        expect(seen.text).toContain('starting');
      }
      // The admin's password never fails: it is "retry shortly" until it works.
      for (const seen of logins) {
        if (seen.status === 200) continue;
        expect(seen.status, seen.text).toBe(503);
        expect(seen.retryAfter).toBe('1');
      }
    } finally {
      await starting;
      await cynode?.close();
      await pgDb?.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
