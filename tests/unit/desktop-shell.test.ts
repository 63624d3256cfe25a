// The desktop shell's plain-Node parts: window state, tray contents and icon, and the master-key
// choice between the OS keychain and the key file (a fake keychain here; the real one is in
// tests/integration/keychain.test.ts).
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keepWindowState, readWindowState, restoreBounds, writeWindowState, type Rect } from '../../main/shell/window-state';
import { DEFAULT_SIZE } from '../../main/shell/window-options';
import { nodesLabel, trayIconBitmap, trayMenu, trayTooltip } from '../../main/shell/tray';
import { KEYCHAIN_SERVICE, KeychainError, desktopMasterKey, keychainAccount, keychainMarker, type Keychain } from '../../main/shell/keychain';

const dirs: string[] = [];
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'cynode-shell-'));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const SCREEN: Rect = { x: 0, y: 0, width: 1920, height: 1040 };
const RIGHT: Rect = { x: 1920, y: 0, width: 1280, height: 1000 };

describe('window state', () => {
  it('restores saved bounds on a display that is still there', () => {
    expect(restoreBounds({ bounds: { x: 100, y: 50, width: 1000, height: 700 }, maximized: false }, [SCREEN])).toEqual({ x: 100, y: 50, width: 1000, height: 700 });
    expect(restoreBounds({ bounds: { x: 2000, y: 10, width: 800, height: 600 }, maximized: false }, [SCREEN, RIGHT])).toEqual({ x: 2000, y: 10, width: 800, height: 600 });
  });

  it('a window left on a display that is gone comes back centred on the primary one', () => {
    expect(restoreBounds({ bounds: { x: 2000, y: 10, width: 800, height: 600 }, maximized: false }, [SCREEN])).toEqual({
      x: (1920 - DEFAULT_SIZE.width) / 2,
      y: (1040 - DEFAULT_SIZE.height) / 2,
      ...DEFAULT_SIZE,
    });
    expect(restoreBounds(null, [SCREEN])).toMatchObject(DEFAULT_SIZE);
  });

  it('a window larger than its display, or partly off it, is shrunk and moved onto it', () => {
    expect(restoreBounds({ bounds: { x: -50, y: 0, width: 3000, height: 2000 }, maximized: false }, [SCREEN])).toEqual({ x: 0, y: 0, width: 1920, height: 1040 });
    expect(restoreBounds({ bounds: { x: 1500, y: 600, width: 800, height: 600 }, maximized: false }, [SCREEN])).toEqual({ x: 1120, y: 440, width: 800, height: 600 });
  });

  it('reads back what it wrote; a missing, corrupt or foreign file reads as none', async () => {
    const dir = await tempDir();
    const file = join(dir, 'sub', 'window-state.json');
    expect(await readWindowState(file)).toBeNull();
    await writeWindowState(file, { bounds: { x: 1, y: 2, width: 300, height: 400 }, maximized: true });
    expect(await readWindowState(file)).toEqual({ bounds: { x: 1, y: 2, width: 300, height: 400 }, maximized: true });
    for (const bad of ['{', '{"bounds":{"x":"1","y":2,"width":3,"height":4}}', '{"bounds":{"x":1,"y":2,"width":-3,"height":4}}', 'null']) {
      await writeFile(file, bad);
      expect(await readWindowState(file), bad).toBeNull();
    }
  });

  it('saves after moves settle and on close, the normal bounds with the maximised flag; not while minimised', async () => {
    const dir = await tempDir();
    const file = join(dir, 'window-state.json');
    const win = Object.assign(new EventEmitter(), {
      bounds: { x: 10, y: 10, width: 800, height: 600 },
      maximized: false,
      minimized: false,
      getNormalBounds() {
        return { ...this.bounds };
      },
      isMaximized() {
        return this.maximized;
      },
      isMinimized() {
        return this.minimized;
      },
      isFullScreen: () => false,
    });
    const keeper = keepWindowState(win, file, { debounceMs: 20 });
    win.bounds = { x: 30, y: 40, width: 900, height: 650 };
    win.emit('move');
    win.emit('resize');
    await new Promise((r) => setTimeout(r, 80));
    expect(await readWindowState(file)).toEqual({ bounds: { x: 30, y: 40, width: 900, height: 650 }, maximized: false });
    win.maximized = true;
    win.emit('maximize');
    await keeper.flush();
    expect(await readWindowState(file)).toEqual({ bounds: { x: 30, y: 40, width: 900, height: 650 }, maximized: true });
    win.minimized = true;
    win.bounds = { x: 0, y: 0, width: 1, height: 1 };
    win.emit('close');
    await keeper.flush();
    expect((await readWindowState(file))?.bounds.width).toBe(900);
  });
});

describe('tray', () => {
  const actions = { open: () => {}, openInBrowser: () => {}, quit: () => {} };

  it('shows the server state, the gateway URL and the node count, with Open and Quit', () => {
    const running = { server: 'running' as const, gatewayUrl: 'http://127.0.0.1:12080', nodes: { total: 3, active: 2 } };
    expect(trayMenu(running, actions).map((i) => i.label ?? '—')).toEqual(['Server running', 'http://127.0.0.1:12080', 'Nodes: 2 active of 3', '—', 'Open CyNode', 'Open in browser', '—', 'Quit CyNode']);
    expect(trayTooltip(running)).toBe('CyNode — server running, nodes: 2 active of 3');
    const quit = trayMenu(running, actions).find((i) => i.label === 'Quit CyNode')!;
    expect(quit.click).toBe(actions.quit);
  });

  it('while starting or failed, Open is disabled and nodes are unknown; while stopping, Quit is too', () => {
    const starting = trayMenu({ server: 'starting' }, actions);
    expect(starting.find((i) => i.label === 'Open CyNode')!.enabled).toBe(false);
    expect(nodesLabel({ server: 'starting' })).toBe('Nodes: –');
    expect(nodesLabel({ server: 'running', nodes: { total: 0, active: 0 } })).toBe('Nodes: none joined');
    expect(trayMenu({ server: 'failed', error: 'x' }, actions)[0]!.label).toBe('Server failed to start');
    expect(trayMenu({ server: 'stopping' }, actions).find((i) => i.label === 'Quit CyNode')!.enabled).toBe(false);
  });

  it('the icon is a BGRA bitmap of the right size, coloured by state, transparent in the corners', () => {
    const up = trayIconBitmap('running', 32);
    const failed = trayIconBitmap('failed', 32);
    expect(up.length).toBe(32 * 32 * 4);
    const centre = (32 * 16 + 16) * 4;
    expect([...up.subarray(centre, centre + 4)]).toEqual([0x5c, 0xb8, 0x2e, 255]);
    expect(failed[centre + 2]).toBe(0xd9);
    expect(up[3]).toBe(0);
  });
});

/** An in-memory keychain; `broken` throws like a missing Secret Service, `hang` never answers. */
function fakeKeychain(mode: 'ok' | 'broken' | 'hang' | 'forgets' = 'ok') {
  const items = new Map<string, string>();
  const keychain: Keychain = (service, account) => ({
    async getPassword() {
      if (mode === 'broken') throw new Error('Platform secure storage failure: no Secret Service');
      if (mode === 'hang') return new Promise<never>(() => {});
      return items.get(`${service}/${account}`) ?? null;
    },
    async setPassword(value) {
      if (mode === 'broken') throw new Error('Platform secure storage failure');
      if (mode !== 'forgets') items.set(`${service}/${account}`, value);
    },
  });
  return { keychain, items };
}

describe('master key: OS keychain, else the key file', () => {
  it('a new data folder gets a random key in the keychain, a marker and no key file; the next start reads the same key', async () => {
    const dir = await tempDir();
    const { keychain, items } = fakeKeychain();
    const first = await desktopMasterKey(dir, { keychain });
    expect(first.source).toBe('keychain');
    expect(Buffer.from(first.masterKey!, 'base64')).toHaveLength(32);
    expect(items.get(`${KEYCHAIN_SERVICE}/${keychainAccount(dir)}`)).toBe(first.masterKey);
    await expect(stat(join(dir, 'master.key'))).rejects.toMatchObject({ code: 'ENOENT' });
    const marker = await readFile(keychainMarker(dir), 'utf8');
    expect(marker).not.toContain(first.masterKey);
    expect((await stat(keychainMarker(dir))).mode & 0o777).toBe(0o600);
    expect(await desktopMasterKey(dir, { keychain })).toEqual({ masterKey: first.masterKey, source: 'keychain' });
    // Another data folder, another key.
    const other = await desktopMasterKey(await tempDir(), { keychain });
    expect(other.masterKey).not.toBe(first.masterKey);
  });

  it('no keychain answering (error, silence, or a store that drops writes): the server key file is used', async () => {
    for (const mode of ['broken', 'hang', 'forgets'] as const) {
      const dir = await tempDir();
      const key = await desktopMasterKey(dir, { keychain: fakeKeychain(mode).keychain, timeoutMs: 100 });
      expect(key, mode).toMatchObject({ masterKey: undefined, source: 'file' });
      expect(key.reason, mode).toMatch(/no keychain answered/);
      await expect(stat(keychainMarker(dir))).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });

  it('a folder that already has a key file keeps it (it may be used headless too)', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'master.key'), Buffer.alloc(32, 7).toString('base64') + '\n');
    const { keychain, items } = fakeKeychain();
    expect(await desktopMasterKey(dir, { keychain })).toMatchObject({ masterKey: undefined, source: 'file' });
    expect(items.size).toBe(0);
  });

  it('a folder whose key is in the keychain never gets a new key: an unreadable, missing or different key is an error', async () => {
    const dir = await tempDir();
    const { keychain, items } = fakeKeychain();
    await desktopMasterKey(dir, { keychain });
    await expect(desktopMasterKey(dir, { keychain: fakeKeychain('broken').keychain })).rejects.toThrow(KeychainError);
    await expect(desktopMasterKey(dir, { keychain: fakeKeychain('broken').keychain })).rejects.toThrow(/cannot be read.*unlock the keychain, or set CYNODE_MASTER_KEY/);
    items.set(`${KEYCHAIN_SERVICE}/${keychainAccount(dir)}`, Buffer.alloc(32, 1).toString('base64'));
    await expect(desktopMasterKey(dir, { keychain })).rejects.toThrow(/different master key/);
    items.clear();
    await expect(desktopMasterKey(dir, { keychain })).rejects.toThrow(/missing from the OS keychain/);
    await expect(stat(join(dir, 'master.key'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
