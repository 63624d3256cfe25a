import { cp, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ENVIRONMENT, dataFiles } from '../../server/config/config';
import { migrate } from '../../server/db';
import { openPglite } from '../../server/db/pglite';
import { createPostgresDatabase } from '../support/harness';
import { login, occupyPort, portIsFree, runCli, serve, stopQuietly, type CliRun, type Served } from '../support/cli';

// These tests run the built CLI (`npm run build`), the way `npm start` does.

const tempDirs: string[] = [];
async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cynode-cli-'));
  tempDirs.push(dir);
  return dir;
}

/**
 * A data directory whose PGlite database is created and migrated but has no users yet: what a
 * first run finds right after initdb. Copying it spares each test the few seconds of initdb; the
 * first-run tests above still start from an empty directory.
 */
let template: string | undefined;
async function initialisedDataDir(): Promise<string> {
  if (!template) {
    template = await dataDir();
    const db = await openPglite(dataFiles.pglite(template));
    await migrate(db);
    await db.close();
  }
  const dir = await dataDir();
  await cp(template, dir, { recursive: true });
  return dir;
}

afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

const running: CliRun[] = [];
function track<T extends CliRun>(run: T): T {
  running.push(run);
  return run;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map(stopQuietly));
});

async function me(baseUrl: string, token: string): Promise<{ id: string; handle: string }> {
  const res = await fetch(`${baseUrl}/v1/users/me`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { id: string; handle: string };
}

async function stop(run: Served, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  run.child.kill(signal);
  expect(await run.exited).toEqual({ code: 0, signal: null });
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

/** What a user sees when the configuration is wrong: one clear line, no stack trace. */
function expectOneLineError(run: CliRun, mentions: RegExp) {
  const lines = run.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^cynode: /);
  expect(lines[0]).toMatch(mentions);
  expect(run.stderr + run.stdout).not.toMatch(/\n\s+at /);
}

describe('cynode --help', () => {
  it.each([[[] as string[]], [['serve']]])('describes every environment variable and every option (%j --help)', async (args) => {
    const run = runCli([...args, '--help']);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    for (const v of ENVIRONMENT) expect(run.stdout).toContain(v.name);
    if (args.length === 0) {
      expect(run.stdout).toMatch(/^\s+serve\b/m);
      expect(run.stdout).toContain('--version');
    } else {
      for (const flag of ['--host', '--gateway-port', '--control-port', '--data-dir', '--database-url', '--help']) expect(run.stdout).toContain(flag);
    }
  });
});

describe.each(['pglite', 'postgres'] as const)('cynode serve on %s', (kind) => {
  let dbEnv: Record<string, string> = {};
  let dropDb: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (kind === 'postgres') {
      const db = await createPostgresDatabase();
      dbEnv = { DATABASE_URL: db.url };
      dropDb = db.drop;
    }
  });
  afterAll(async () => {
    await dropDb?.();
  });

  it('first run prints a generated admin password once and files it 0600; a second start reuses everything', async () => {
    const dir = await dataDir();
    const first = track(await serve({ CYNODE_DATA_DIR: dir, ...dbEnv }));
    const password = first.printedPassword;
    expect(password).toMatch(/^\S{16,}$/);
    expect(first.stdout.split(password!).length - 1).toBe(1);

    const file = join(dir, 'initial-admin-password');
    expect((await readFile(file, 'utf8')).trim()).toBe(password);
    expect(await mode(file)).toBe(0o600);
    expect(await mode(join(dir, 'master.key'))).toBe(0o600);
    if (kind === 'pglite') expect(first.stdout).toContain(`PGlite at ${join(dir, 'pglite')}`);
    else expect(first.stdout).toMatch(/database\s+PostgreSQL at 127\.0\.0\.1:\d+\/cynode_test_/);

    const signedIn = await login(first.gatewayUrl, 'admin', password!);
    expect(signedIn.status).toBe(200);
    const adminId = (await me(first.gatewayUrl, signedIn.token!)).id;
    await stop(first);

    const second = track(await serve({ CYNODE_DATA_DIR: dir, ...dbEnv }));
    expect(second.printedPassword).toBeUndefined();
    expect(second.stdout).not.toContain(password!);
    expect(second.stdout).not.toContain('First run');
    const again = await login(second.gatewayUrl, 'admin', password!);
    expect(again.status).toBe(200);
    expect((await me(second.gatewayUrl, again.token!)).id).toBe(adminId);
    // An access token from before the restart is still good: the signing key lives in master.key.
    expect((await me(second.gatewayUrl, signedIn.token!)).id).toBe(adminId);
    await stop(second);
  });
});

describe('cynode serve', () => {
  it('takes the admin password from CYNODE_ADMIN_PASSWORD, printing and filing none', async () => {
    const dir = await initialisedDataDir();
    const run = track(await serve({ CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: 'chosen-by-me-1' }));
    expect(run.printedPassword).toBeUndefined();
    expect(run.stdout).not.toContain('chosen-by-me-1');
    expect(run.stdout).toContain('CYNODE_ADMIN_PASSWORD');
    await expect(stat(join(dir, 'initial-admin-password'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await login(run.gatewayUrl, 'admin', 'chosen-by-me-1')).status).toBe(200);
    await stop(run);
  });

  it("logs a chat request's model only redacted, and no query string's values: a client may send any text there", async () => {
    const secret = 'sk-proj-Q7x2Lm9Vb4Nc8Zt1Rw6Ys3Kd0Hf5Jg2Pa7Eo4Iu9Ty1Re6Wq3Ds8Fg0Hj5Kl2Zx7Cv4Bn9Mm1';
    const run = track(await serve({ CYNODE_DATA_DIR: await initialisedDataDir(), CYNODE_ADMIN_PASSWORD: 'admin-password-1', CYNODE_LOG_LEVEL: 'info', CYNODE_EMBEDDED_NODE: '0' }));
    const { token } = await login(run.gatewayUrl, 'admin', 'admin-password-1');
    const res = await fetch(`${run.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: `gpt-4o ${secret}`, messages: [{ role: 'user', content: 'hi' }] }),
    });
    // No node serves inference: the completion fails, and says so in the info log.
    expect(res.status).toBe(503);
    const [line] = await run.waitForStdout(/^.*chat completion did not succeed.*$/m);
    expect(JSON.parse(line)).toMatchObject({ model: 'gpt-4o SECRET_REDACTED', error_code: 'cynodeai_inference_unavailable' });
    // The request log names a query's parameters, never their values.
    await fetch(`${run.gatewayUrl}/v1/chat/warm?model=${encodeURIComponent(secret)}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    await run.waitForStdout(/\/v1\/chat\/warm\?model=…/);
    expect(run.stdout + run.stderr).not.toContain(secret.slice(8, 30));
    await stop(run);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('exits 0 on %s and releases both ports', async (signal) => {
    const run = track(await serve({ CYNODE_DATA_DIR: await initialisedDataDir(), CYNODE_ADMIN_PASSWORD: 'admin-password-1' }));
    const ports = [run.gatewayUrl, run.controlUrl].map((u) => Number(new URL(u).port));
    expect((await fetch(`${run.gatewayUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${run.controlUrl}/healthz`)).status).toBe(200);
    for (const p of ports) expect(await portIsFree(p)).toBe(false);

    await stop(run, signal);
    for (const p of ports) expect(await portIsFree(p)).toBe(true);
  });

  it('serves on the ports it is given and the same data directory from the command line', async () => {
    const dir = await initialisedDataDir();
    const a = await occupyPort();
    const b = await occupyPort();
    await Promise.all([a.release(), b.release()]);
    const run = track(await serve({ CYNODE_GATEWAY_PORT: '1', CYNODE_ADMIN_PASSWORD: 'admin-password-1' }, ['--data-dir', dir, '--gateway-port', String(a.port), '--control-port', String(b.port)]));
    expect(run.gatewayUrl).toBe(`http://127.0.0.1:${a.port}`);
    expect(run.controlUrl).toBe(`http://127.0.0.1:${b.port}`);
    expect(run.stdout).toContain(`data directory ${dir}`);
    expect((await login(run.gatewayUrl, 'admin', 'admin-password-1')).status).toBe(200);
    await stop(run);
  });

  it.each([
    [{ CYNODE_GATEWAY_PORT: 'abc' }, [], /CYNODE_GATEWAY_PORT/],
    [{ CYNODE_CONTROL_PORT: '70000' }, [], /CYNODE_CONTROL_PORT/],
    [{}, ['--gateway-port', 'abc'], /--gateway-port/],
    [{ DATABASE_URL: 'mysql://x' }, [], /DATABASE_URL must start with postgres/],
    [{}, ['--database-url', 'mysql://x'], /DATABASE_URL must start with postgres/],
    [{ CYNODE_ADMIN_PASSWORD: 'short' }, [], /CYNODE_ADMIN_PASSWORD/],
    [{ CYNODE_LOG_LEVEL: 'chatty' }, [], /CYNODE_LOG_LEVEL/],
  ])('refuses bad configuration %j %j with exit code 2 and one clear line', async (env, args, mentions) => {
    const dir = await dataDir();
    const run = track(runCli(['serve', ...args], { CYNODE_DATA_DIR: dir, ...env }));
    expect(await run.exited).toEqual({ code: 2, signal: null });
    expectOneLineError(run, mentions);
    expect(run.stdout).not.toContain('gateway');
  });

  it('refuses, with exit code 2, a database migrated by a newer CyNode', async () => {
    const dir = await initialisedDataDir();
    const db = await openPglite(dataFiles.pglite(dir));
    await db.query('INSERT INTO schema_migrations (name) VALUES ($1)', ['9999_from_a_newer_cynode']);
    await db.close();
    const run = track(runCli(['serve'], { CYNODE_DATA_DIR: dir, CYNODE_GATEWAY_PORT: '0', CYNODE_CONTROL_PORT: '0', CYNODE_LOG_LEVEL: 'warn' }));
    expect(await run.exited).toEqual({ code: 2, signal: null });
    expectOneLineError(run, /newer CyNode.*9999_from_a_newer_cynode/);
  });

  it.each(['CYNODE_GATEWAY_PORT', 'CYNODE_CONTROL_PORT'])('exits 2 with a clear message when %s is taken, and creates no admin', async (variable) => {
    const dir = await initialisedDataDir();
    const taken = await occupyPort();
    try {
      const run = track(runCli(['serve'], { CYNODE_DATA_DIR: dir, CYNODE_GATEWAY_PORT: '0', CYNODE_CONTROL_PORT: '0', CYNODE_LOG_LEVEL: 'warn', [variable]: String(taken.port) }));
      expect(await run.exited).toEqual({ code: 2, signal: null });
      expectOneLineError(run, new RegExp(`${taken.port}.*in use|in use.*${taken.port}`));
      // The failed start must not have used up the first run: the next start shows the password.
      await expect(stat(join(dir, 'initial-admin-password'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await taken.release();
    }
    const retry = track(await serve({ CYNODE_DATA_DIR: dir }));
    expect(retry.printedPassword).toBeTruthy();
    expect((await login(retry.gatewayUrl, 'admin', retry.printedPassword!)).status).toBe(200);
    await stop(retry);
  });
});

describe('one process per PGlite data directory', () => {
  it('refuses a second `cynode serve` on a data directory in use, and the first keeps serving', async () => {
    const dir = await initialisedDataDir();
    const first = track(await serve({ CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: 'admin-password-1' }));
    const second = track(runCli(['serve'], { CYNODE_DATA_DIR: dir, CYNODE_GATEWAY_PORT: '0', CYNODE_CONTROL_PORT: '0', CYNODE_LOG_LEVEL: 'warn' }));
    expect(await second.exited).toEqual({ code: 2, signal: null });
    expectOneLineError(second, new RegExp(`pid ${first.child.pid}.*${dir}`));
    expect((await login(first.gatewayUrl, 'admin', 'admin-password-1')).status).toBe(200);
    await stop(first);
  });
});

describe('cynode reset-password', () => {
  it('sets a new admin password offline: the old one stops working, the printed one works', async () => {
    const dir = await initialisedDataDir();
    const env = { CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: 'forgotten-password-1' };
    const before = track(await serve(env));
    const oldToken = (await login(before.gatewayUrl, 'admin', 'forgotten-password-1')).token!;

    // While the server holds the PGlite database, the command must not touch it.
    const busy = track(runCli(['reset-password'], { CYNODE_DATA_DIR: dir }));
    expect(await busy.exited).toEqual({ code: 2, signal: null });
    expectOneLineError(busy, /another CyNode process/);
    await stop(before);

    const reset = track(runCli(['reset-password'], { CYNODE_DATA_DIR: dir }));
    expect(await reset.exited).toEqual({ code: 0, signal: null });
    const password = /^\s{4}(\S+)$/m.exec(reset.stdout)?.[1];
    expect(password).toBeTruthy();

    const after = track(await serve(env));
    expect((await login(after.gatewayUrl, 'admin', 'forgotten-password-1')).status).toBe(401);
    expect((await login(after.gatewayUrl, 'admin', password!)).status).toBe(200);
    // Sessions from before the reset are over.
    expect((await fetch(`${after.gatewayUrl}/v1/users/me`, { headers: { authorization: `Bearer ${oldToken}` } })).status).toBe(401);
    await stop(after);
  });

  it('takes the password from CYNODE_NEW_PASSWORD and refuses unknown users and short passwords', async () => {
    const dir = await initialisedDataDir();
    const first = track(await serve({ CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: 'admin-password-1' }));
    await stop(first);

    const unknown = track(runCli(['reset-password', '--handle', 'nobody'], { CYNODE_DATA_DIR: dir }));
    expect(await unknown.exited).toEqual({ code: 2, signal: null });
    expectOneLineError(unknown, /no user "nobody"/);

    const short = track(runCli(['reset-password'], { CYNODE_DATA_DIR: dir, CYNODE_NEW_PASSWORD: 'short' }));
    expect(await short.exited).toEqual({ code: 2, signal: null });
    expectOneLineError(short, /at least 8 characters/);

    const chosen = track(runCli(['reset-password'], { CYNODE_DATA_DIR: dir, CYNODE_NEW_PASSWORD: 'my-new-password-1' }));
    expect(await chosen.exited).toEqual({ code: 0, signal: null });
    expect(chosen.stdout).not.toContain('my-new-password-1');

    const after = track(await serve({ CYNODE_DATA_DIR: dir }));
    expect((await login(after.gatewayUrl, 'admin', 'my-new-password-1')).status).toBe(200);
    await stop(after);
  });
});
