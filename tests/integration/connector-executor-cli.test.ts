import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli, serve, stopQuietly, type CliRun } from '../support/cli';
import { until } from '../support/until';

// The built app (`npm run build`): the connector executor runs as its own process next to
// `cynode serve`, dies with it, and `cynode rotate-master-key` moves its key to a new master key.

const dirs: string[] = [];
const running: CliRun[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map(stopQuietly));
});
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cynode-executor-cli-'));
  dirs.push(dir);
  return dir;
}

/** Alive and not a zombie (a reaped-late child still answers signal 0). */
async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return !/^State:\s+Z/m.test(status);
}

const EXECUTOR_STARTED = /"pid":(\d+),"hostname":"[^"]*","name":"connector-executor","msg":"connector executor started"/;

describe('connector executor in the built app', () => {
  it('runs as a process of its own and ends when the server is killed', async () => {
    const run = await serve({ CYNODE_DATA_DIR: await dataDir(), CYNODE_ADMIN_PASSWORD: 'admin-password-1', CYNODE_EMBEDDED_NODE: '0', CYNODE_LOG_LEVEL: 'debug' });
    running.push(run);
    const pid = Number((await run.waitForStdout(EXECUTOR_STARTED))[1]);
    expect(pid).not.toBe(run.child.pid);
    expect(await alive(pid)).toBe(true);
    run.child.kill('SIGKILL');
    await run.exited;
    await until('the executor to end', async () => !(await alive(pid)), 10_000);
  });

  it('rotate-master-key replaces the key file; the server starts again on the new key', async () => {
    const dir = await dataDir();
    const env = { CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: 'admin-password-1', CYNODE_EMBEDDED_NODE: '0' };
    const first = await serve(env);
    running.push(first);
    first.child.kill('SIGTERM');
    await first.exited;
    const before = await readFile(join(dir, 'master.key'), 'utf8');

    const rotate = runCli(['rotate-master-key'], { CYNODE_DATA_DIR: dir });
    running.push(rotate);
    expect(await rotate.exited).toEqual({ code: 0, signal: null });
    expect(rotate.stdout).toMatch(/Master key rotated: 1 node secret\(s\) and 1 connector executor key\(s\)/);
    expect(await readFile(join(dir, 'master.key.previous'), 'utf8')).toBe(before);
    expect(rotate.stdout + rotate.stderr).not.toContain(before.trim());

    const second = await serve({ ...env, CYNODE_LOG_LEVEL: 'debug' });
    running.push(second);
    await second.waitForStdout(EXECUTOR_STARTED);
  });

  it('rotate-master-key with CYNODE_MASTER_KEY prints the new key once, for the operator to set', async () => {
    const dir = await dataDir();
    const key = randomBytes(32).toString('base64');
    const first = await serve({ CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: 'admin-password-1', CYNODE_EMBEDDED_NODE: '0', CYNODE_MASTER_KEY: key });
    running.push(first);
    first.child.kill('SIGTERM');
    await first.exited;
    const rotate = runCli(['rotate-master-key'], { CYNODE_DATA_DIR: dir, CYNODE_MASTER_KEY: key });
    running.push(rotate);
    expect(await rotate.exited).toEqual({ code: 0, signal: null });
    const [, printed] = rotate.stdout.match(/^ {4}(\S+)$/m) ?? [];
    expect(Buffer.from(printed!, 'base64')).toHaveLength(32);
    expect(rotate.stdout).toContain('Set CYNODE_MASTER_KEY');
    const refused = runCli(['rotate-master-key'], { CYNODE_DATA_DIR: dir, CYNODE_MASTER_KEY: key });
    running.push(refused);
    expect((await refused.exited).code).not.toBe(0);
    const again = await serve({ CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: 'admin-password-1', CYNODE_EMBEDDED_NODE: '0', CYNODE_MASTER_KEY: printed!, CYNODE_LOG_LEVEL: 'debug' });
    running.push(again);
    await again.waitForStdout(EXECUTOR_STARTED);
  });
});
