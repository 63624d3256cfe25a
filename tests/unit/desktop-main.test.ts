// The built main process (out/main/index.js, what `electron .` runs) in plain Node, with a fake
// 'electron' module (tests/fixtures/electron-fake.mjs): main/index.ts really wires the facade —
// secure window on the gateway's console, session lockdown, IPC, the owner's token, clean quit.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { secureWebPreferences } from '../../main/shell/window-options';
import { buildCsp } from '../../main/shell/csp';

const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'out/main/index.js');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('the built Electron main process, on a fake electron module', () => {
  it('opens a secure window on the gateway, signs the owner in over IPC, and quits after the server closed', async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
    const dir = await mkdtemp(join(tmpdir(), 'cynode-desktop-main-'));
    dirs.push(dir);
    const dataDir = join(dir, 'data');
    const reportFile = join(dir, 'report.json');
    const tokenFile = join(dir, 'token');
    const { stdout, stderr } = await promisify(execFile)('node', ['--import', join(ROOT, 'tests/fixtures/electron-fake.mjs'), MAIN], {
      cwd: ROOT,
      timeout: 90_000,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        // No Secret Service here: the key file is used (tests/integration/keychain.test.ts covers the keychain).
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dir, 'no-bus')}`,
        CYNODE_DATA_DIR: dataDir,
        CYNODE_GATEWAY_PORT: '0',
        CYNODE_CONTROL_PORT: '0',
        CYNODE_EMBEDDED_NODE: '0',
        CYNODE_ADMIN_PASSWORD: 'owner-password-1',
        CYNODE_LOG_LEVEL: 'info',
        FAKE_ELECTRON_USER_DATA: dir,
        FAKE_ELECTRON_REPORT: reportFile,
        FAKE_ELECTRON_TOKEN_FILE: tokenFile,
      },
    });
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.errors).toEqual([]);
    expect(report.windows).toHaveLength(1);
    expect(report.windows[0].webPreferences).toStrictEqual(secureWebPreferences(join(ROOT, 'out/preload/index.cjs')));
    expect(report.loaded).toHaveLength(1);
    expect(report.loaded[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(report.ipc).toEqual(['cynode:app-info', 'cynode:get-session', 'cynode:get-status', 'cynode:open-external']);
    expect(report.session).toMatchObject({ user: { handle: 'admin' }, token_type: 'Bearer' });
    expect(report.me).toBe(200);
    expect(report.permissions).toBe(false);
    expect(report.blocked).toBe(true);
    expect(report.csp).toEqual([buildCsp()]);
    expect(report.navigationPrevented).toBe(true);
    expect(report.tray[0]).toBe('CyNode — server starting…');
    expect(report.tray).toContain('CyNode — server running, nodes: none joined');
    expect(report.tray.at(-1)).toBe('CyNode — server stopped');
    // Closing the window quit the app: held once for the server to stop, then for real.
    expect(report.quit).toEqual(['held', 'quit']);
    await expect(stat(join(dataDir, 'cynode.pid'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(stdout).toContain('desktop: the embedded server stopped');
    expect(stdout).toContain('master key: key file in the data folder');
    const token = await readFile(tokenFile, 'utf8');
    expect(stdout).toContain('/v1/users/me');
    expect(stdout + stderr).not.toContain(token);
  });
});
