// The desktop shell's life with the real embedded server (startCynode on PGlite in a temp folder,
// embedded node off) and a fake of Electron's `app`: single instance, start → ready → window,
// the owner's minted session working against the gateway and never logged, quit → server closed.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config/config';
import { startCynode } from '../../server/app';
import { DesktopShell, type EmbeddedServer, type ShellOptions } from '../../main/shell/lifecycle';
import type { DesktopStatus } from '../../preload/api';

/** Electron's `app`, as far as the shell uses it: events, the instance lock, quit and exit. */
class FakeApp extends EventEmitter {
  quitCalls = 0;
  quitted = false;
  exitCode: number | undefined;
  private finish!: () => void;
  readonly done = new Promise<void>((r) => (this.finish = r));
  constructor(private readonly lock: boolean) {
    super();
  }
  requestSingleInstanceLock() {
    return this.lock;
  }
  whenReady() {
    return Promise.resolve();
  }
  /** Like Electron: before-quit first; a listener may prevent it; otherwise the app ends. */
  quit() {
    this.quitCalls++;
    let prevented = false;
    this.emit('before-quit', { preventDefault: () => (prevented = true) });
    if (prevented) return;
    this.quitted = true;
    this.finish();
  }
  exit(code = 0) {
    this.exitCode = code;
    this.finish();
  }
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function realServer(env: Record<string, string> = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'cynode-desktop-'));
  dirs.push(dataDir);
  const config = loadConfig({ CYNODE_EMBEDDED_NODE: '0', CYNODE_ADMIN_PASSWORD: 'owner-password-1', ...env }, { dataDir, host: '127.0.0.1', gatewayPort: 0, controlPort: 0 });
  return { dataDir, start: () => startCynode(config) };
}

function shellWith(app: FakeApp, start: () => Promise<EmbeddedServer>, extra: Partial<ShellOptions> = {}) {
  const statuses: DesktopStatus[] = [];
  const windows: string[] = [];
  const logs: string[] = [];
  let focused = 0;
  const shell = new DesktopShell({
    app,
    start,
    showWindow: (url) => void windows.push(url),
    focusWindow: () => void focused++,
    onStatus: (s) => statuses.push(s),
    log: (l) => logs.push(l),
    nodePollMs: 0,
    ...extra,
  });
  return { shell, statuses, windows, logs, focused: () => focused };
}

/** Everything this process writes to stdout/stderr, by any route (pino writes to fd 1 with fs.write*). */
function captureOutput() {
  const chunks: string[] = [];
  const text = (b: unknown) => (typeof b === 'string' ? b : Buffer.isBuffer(b) || b instanceof Uint8Array ? Buffer.from(b).toString('utf8') : String(b));
  const orig = { writeSync: fs.writeSync, write: fs.write, out: process.stdout.write, err: process.stderr.write };
  (fs as any).writeSync = function (fd: number, buf: unknown, ...rest: unknown[]) {
    if (fd === 1 || fd === 2) chunks.push(text(buf));
    return (orig.writeSync as any).call(fs, fd, buf, ...rest);
  };
  (fs as any).write = function (fd: number, buf: unknown, ...rest: unknown[]) {
    if (fd === 1 || fd === 2) chunks.push(text(buf));
    return (orig.write as any).call(fs, fd, buf, ...rest);
  };
  process.stdout.write = function (this: unknown, buf: unknown, ...rest: unknown[]) {
    chunks.push(text(buf));
    return (orig.out as any).call(process.stdout, buf, ...rest);
  } as typeof process.stdout.write;
  process.stderr.write = function (this: unknown, buf: unknown, ...rest: unknown[]) {
    chunks.push(text(buf));
    return (orig.err as any).call(process.stderr, buf, ...rest);
  } as typeof process.stderr.write;
  return {
    text: () => chunks.join(''),
    restore() {
      Object.assign(fs, { writeSync: orig.writeSync, write: orig.write });
      process.stdout.write = orig.out;
      process.stderr.write = orig.err;
    },
  };
}

async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(needle)) hits.push(path);
  }
  return hits;
}

const until = async (what: () => boolean, ms = 30_000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('desktop shell lifecycle', () => {
  it('a second launch does not start anything: it quits, and the first instance brings its window forward', async () => {
    let starts = 0;
    const start = async () => (starts++, { gatewayUrl: 'http://127.0.0.1:1', localSession: async () => ({}) as any, close: async () => {} });
    const first = new FakeApp(true);
    const a = shellWith(first, start, { fetch: (async () => new Response('ok')) as typeof fetch });
    const second = new FakeApp(false);
    const b = shellWith(second, start);
    expect(a.shell.run()).toBe(true);
    expect(b.shell.run()).toBe(false);
    expect(second.quitted).toBe(true);
    await a.shell.ready();
    expect(starts).toBe(1);
    first.emit('second-instance', {}, ['cynode'], '/');
    expect(a.focused()).toBe(1);
    expect(b.focused()).toBe(0);
    first.quit();
    await first.done;
  });

  it('start → ready → window → owner signed in → quit waits until the server and its database are closed; the token is in no log', async () => {
    const output = captureOutput();
    let token: string;
    let server: EmbeddedServer | undefined;
    const { dataDir, start } = await realServer({ CYNODE_LOG_LEVEL: 'info' });
    const app = new FakeApp(true);
    const { shell, statuses, windows, logs } = shellWith(app, async () => (server = await start()));
    try {
      expect(shell.run()).toBe(true);
      expect(await shell.ready()).toBe(server);
      const url = server!.gatewayUrl;
      expect(windows).toEqual([url]);
      expect(statuses.map((s) => s.server)).toEqual(['starting', 'running']);
      expect(statuses.at(-1)).toEqual({ server: 'running', gatewayUrl: url });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);

      // The owner is signed in without a password: the minted token works against the real gateway.
      const [session, again] = await Promise.all([shell.getSession(), shell.getSession()]);
      token = session.access_token;
      expect(again.access_token).toBe(token);
      expect(session.user.handle).toBe('admin');
      expect(session.expires_at).toBeGreaterThan(Date.now() + 800_000);
      const me = await fetch(`${url}/v1/users/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(me.status).toBe(200);
      expect(await me.json()).toMatchObject({ handle: 'admin', roles: ['admin'], auth_method: 'session' });
      expect((await shell.getSession()).access_token).toBe(token);
      expect((await fetch(`${url}/v1/users/me`, { headers: { authorization: 'Bearer not-a-token' } })).status).toBe(401);

      // The tray's node count comes from the gateway with that session (the embedded node is off).
      await shell.refreshNodes();
      expect(shell.status.nodes).toEqual({ total: 0, active: 0 });

      // Quit: held until the server has closed, then the app ends.
      app.quit();
      expect(app.quitted).toBe(false);
      expect(shell.status.server).toBe('stopping');
      await app.done;
      expect(app.quitted).toBe(true);
      expect(app.quitCalls).toBe(2);
      expect(shell.status).toEqual({ server: 'stopped' });
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
      // PGlite closed and its lock released.
      await expect(stat(join(dataDir, 'cynode.pid'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(shell.getSession()).rejects.toThrow(/not running/);
    } finally {
      output.restore();
    }
    const written = output.text() + logs.join('\n');
    // The capture saw the gateway's own request log, so it would have seen the token too.
    expect(written).toContain('/v1/users/me');
    expect(written).not.toContain(token);
    expect(written).not.toContain(token.split('.')[2]);
    expect(await filesContaining(dataDir, token.split('.')[2]!)).toEqual([]);
  });

  it('an access token near expiry is refreshed through the gateway; a refused refresh mints a new session', async () => {
    const { start } = await realServer({ CYNODE_LOG_LEVEL: 'silent' });
    const real = await start();
    let minted = 0;
    // Sessions say they expire in 5 s, inside the shell's refresh margin.
    const server: EmbeddedServer = { gatewayUrl: real.gatewayUrl, close: () => real.close(), localSession: async () => (minted++, { ...(await real.localSession()), expires_in: 5 }) };
    const app = new FakeApp(true);
    const { shell } = shellWith(app, async () => server);
    try {
      shell.run();
      await shell.ready();
      const first = await shell.getSession();
      const refreshed = await shell.getSession();
      expect(minted).toBe(1);
      expect(refreshed.access_token).not.toBe(first.access_token);
      expect(refreshed.expires_at).toBeGreaterThan(Date.now() + 800_000);
      const me = await fetch(`${real.gatewayUrl}/v1/users/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
      expect(me.status).toBe(200);

      // The owner's sessions are ended elsewhere (e.g. a password change): the next call mints a new one.
      await real.db.query("UPDATE auth_sessions SET is_active = false WHERE user_id = (SELECT id FROM users WHERE handle = 'admin')");
      const stale = await shell.getSession();
      expect(stale.access_token).toBe(refreshed.access_token);
      expect((await fetch(`${real.gatewayUrl}/v1/users/me`, { headers: { authorization: `Bearer ${stale.access_token}` } })).status).toBe(401);
      const forced = await shell.getSession({ renew: true });
      expect(forced.access_token).not.toBe(stale.access_token);
      expect((await fetch(`${real.gatewayUrl}/v1/users/me`, { headers: { authorization: `Bearer ${forced.access_token}` } })).status).toBe(200);
    } finally {
      app.quit();
      await app.done;
    }
    // The refresh of the ended session was refused: a second session was minted.
    expect(minted).toBe(2);
  });

  it('a quit during start waits for the start, closes the server, and shows no window', async () => {
    const { dataDir, start } = await realServer({ CYNODE_LOG_LEVEL: 'silent' });
    let server: EmbeddedServer | undefined;
    const app = new FakeApp(true);
    const { shell, windows, statuses } = shellWith(app, async () => (server = await start()));
    shell.run();
    await until(() => statuses.length > 0);
    app.quit();
    await app.done;
    expect(app.quitted).toBe(true);
    expect(server).toBeDefined();
    expect(windows).toEqual([]);
    expect(shell.status.server).toBe('stopped');
    await expect(fetch(`${server!.gatewayUrl}/healthz`)).rejects.toThrow();
    await expect(stat(join(dataDir, 'cynode.pid'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a start that fails tells the person why and exits with 1', async () => {
    const fatal: string[] = [];
    const app = new FakeApp(true);
    const { shell, statuses, windows } = shellWith(
      app,
      async () => {
        throw Object.assign(new Error('the gateway cannot listen on 127.0.0.1:12080: that address is already in use by another process\nstack'), { code: 'CYNODE_LISTEN' });
      },
      { onFatal: (m) => void fatal.push(m) },
    );
    shell.run();
    await app.done;
    expect(app.exitCode).toBe(1);
    expect(fatal).toEqual(['CyNode could not start: the gateway cannot listen on 127.0.0.1:12080: that address is already in use by another process']);
    expect(statuses.at(-1)).toEqual({ server: 'failed', error: fatal[0] });
    expect(windows).toEqual([]);
  });

  it('on macOS closing the last window keeps the app; elsewhere it quits', async () => {
    for (const [platform, quits] of [['darwin', false], ['linux', true], ['win32', true]] as const) {
      const app = new FakeApp(true);
      const { shell } = shellWith(app, async () => ({ gatewayUrl: 'http://127.0.0.1:1', localSession: async () => ({}) as any, close: async () => {} }), {
        platform,
        fetch: (async () => new Response('ok')) as typeof fetch,
      });
      shell.run();
      await shell.ready();
      app.emit('window-all-closed');
      await new Promise((r) => setTimeout(r, 10));
      expect(app.quitted, platform).toBe(quits);
      if (!quits) app.quit();
      await app.done;
    }
  });
});
