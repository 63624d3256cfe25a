import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCynode } from '../../server/app';
import { ensureSandboxImage, tempDir } from '../support/docker';
import { ApiClient, DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startTestNode } from '../support/nodes';

/** Every entry of the tree that someone besides its owner could read, as "path mode". */
async function notOwnerOnly(root: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (path: string) => {
    const s = await stat(path);
    const mode = s.mode & 0o777;
    if (mode !== (s.isDirectory() ? 0o700 : 0o600)) found.push(`${relative(root, path) || '.'} ${mode.toString(8)}`);
    if (s.isDirectory()) for (const name of await readdir(path)) await visit(join(path, name));
  };
  await visit(root);
  return found;
}

/** What a data directory made before its files were kept private looks like: open to everyone. */
async function loosen(path: string): Promise<void> {
  const s = await stat(path);
  await chmod(path, s.isDirectory() ? 0o755 : 0o644);
  if (s.isDirectory()) for (const name of await readdir(path)) await loosen(join(path, name));
}

const writeSomething = async (api: ApiClient, token: string) => {
  const res = await api.call('/v1/tasks', { token, body: { prompt: 'a prompt nobody else may read' } });
  expect(res.status).toBe(201);
};

/*
 * The data directory holds the master key and, on PGlite, the database, whose write-ahead log
 * carries task prompts and run logs: nobody but the owner may read any of it.
 */
describe.each(DB_KINDS)('the data directory on %s', (kind) => {
  let s: TestServer | undefined;
  afterAll(async () => {
    await s?.close();
  });

  it('is its owner’s alone, also one an earlier version left open to everyone, while serving and after', async () => {
    s = await startTestServer(kind);
    const dataDir = s.config.dataDir;
    await writeSomething(s.api, s.adminToken);
    await s.cynode.close();
    expect(await notOwnerOnly(dataDir)).toEqual([]);

    await loosen(dataDir);
    const again = await startCynode(s.config);
    try {
      const api = new ApiClient(again.gatewayUrl);
      await writeSomething(api, (await api.login('admin', s.adminPassword)).access_token);
      expect(await notOwnerOnly(dataDir)).toEqual([]);
    } finally {
      await again.close();
    }
    expect(await notOwnerOnly(dataDir)).toEqual([]);
  });
});

describe('a node’s state directory', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('is made its owner’s alone, also when it was left open to everyone', async () => {
    await ensureSandboxImage();
    const s = await startTestServer('pglite');
    const dataDir = await tempDir('cynode-node-data-');
    dirs.push(dataDir);
    const stateDir = join(dataDir, 'node');
    await mkdir(stateDir, { mode: 0o755 });
    await chmod(stateDir, 0o755);
    const { node } = await startTestNode(s, 'private-state', { stateDir, inferenceMode: 'disabled' });
    try {
      expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    } finally {
      await node.close();
      await s.close();
    }
  });
});
