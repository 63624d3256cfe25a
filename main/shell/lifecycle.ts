// The desktop app's life: one instance, start the embedded server and wait until it answers, show
// the window, keep a status for the tray and the window, mint the owner's session, and on quit
// hold the app until the server (and its embedded node) has closed. Electron's objects come in as
// parameters, so all of this runs in plain Node under test.
import type { DesktopSession, DesktopStatus } from '../../preload/api';

/** What the shell needs of Electron's `app` (tests pass an EventEmitter). */
export interface ShellApp {
  requestSingleInstanceLock(): boolean;
  whenReady(): Promise<unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Electron's overloaded emitter signature
  on(event: string, listener: (...args: any[]) => void): unknown;
  quit(): void;
  exit(code?: number): void;
}

/** The embedded server as the shell sees it: startCynode's result. */
export interface EmbeddedServer {
  gatewayUrl: string;
  localSession(): Promise<{ access_token: string; refresh_token: string; expires_in: number; user_id: string; handle: string }>;
  close(): Promise<void>;
}

export interface ShellOptions {
  app: ShellApp;
  /** Starts the server (startCynode with the desktop's configuration). */
  start(): Promise<EmbeddedServer>;
  /** Opens (or reopens) the console window on the gateway's origin. */
  showWindow(gatewayUrl: string): Promise<void> | void;
  /** A second launch: bring the existing window forward. */
  focusWindow(): void;
  onStatus?(status: DesktopStatus): void;
  /** A start that failed: tell the person (a dialog) before the app exits. */
  onFatal?(message: string): Promise<void> | void;
  log?(line: string): void;
  platform?: NodeJS.Platform;
  fetch?: typeof fetch;
  /** How long the gateway may take to answer /healthz once started. */
  readyTimeoutMs?: number;
  /** How long quitting waits for the server to close before giving up on it. */
  stopTimeoutMs?: number;
  /** How often the tray's node count is refreshed (0: never). */
  nodePollMs?: number;
}

/** Refresh the access token when it has less than this left. */
const REFRESH_MARGIN_MS = 60_000;

export class DesktopShell {
  private current: DesktopStatus = { server: 'starting' };
  private server: EmbeddedServer | undefined;
  private starting: Promise<EmbeddedServer | undefined> | undefined;
  private stopping: Promise<void> | undefined;
  private closed = false;
  private session: { access: string; refresh: string; expiresAt: number; user: { id: string; handle: string } } | undefined;
  private minting: Promise<DesktopSession> | undefined;
  private nodeTimer: NodeJS.Timeout | undefined;
  private readonly fetch: typeof fetch;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: ShellOptions) {
    this.fetch = opts.fetch ?? fetch;
    this.log = opts.log ?? (() => {});
  }

  get status(): DesktopStatus {
    return { ...this.current };
  }

  get gatewayUrl(): string | undefined {
    return this.server?.gatewayUrl;
  }

  /**
   * Takes the single-instance lock and runs the app. False when another instance holds the lock:
   * this one quits at once (the other is told through `second-instance` and comes forward).
   */
  run(): boolean {
    const { app } = this.opts;
    if (!app.requestSingleInstanceLock()) {
      app.quit();
      return false;
    }
    app.on('second-instance', () => this.opts.focusWindow());
    app.on('window-all-closed', () => {
      if ((this.opts.platform ?? process.platform) !== 'darwin') app.quit();
    });
    app.on('before-quit', (event: { preventDefault(): void }) => {
      if (this.closed) return;
      // Hold the quit until the server and its node have stopped, then quit for real.
      event.preventDefault();
      void this.stop().finally(() => app.quit());
    });
    this.starting = app.whenReady().then(() => this.startServer());
    return true;
  }

  /** Resolves once the server answers and the window was asked to show (undefined if it failed). */
  ready(): Promise<EmbeddedServer | undefined> {
    return this.starting ?? Promise.resolve(undefined);
  }

  private async startServer(): Promise<EmbeddedServer | undefined> {
    const t0 = Date.now();
    this.setStatus({ server: 'starting' });
    this.log('starting the embedded server');
    let server: EmbeddedServer;
    try {
      server = await this.opts.start();
    } catch (err) {
      return this.fail(`CyNode could not start: ${oneLine(err)}`);
    }
    this.server = server;
    if (this.stopping) return server;
    try {
      await this.waitUntilAnswering(server.gatewayUrl);
    } catch (err) {
      return this.fail(`CyNode started but its gateway does not answer: ${oneLine(err)}`);
    }
    this.log(`gateway ${server.gatewayUrl} answers after ${Date.now() - t0} ms`);
    this.setStatus({ server: 'running', gatewayUrl: server.gatewayUrl });
    this.pollNodes();
    await this.opts.showWindow(server.gatewayUrl);
    return server;
  }

  private async fail(message: string): Promise<undefined> {
    this.log(message);
    this.setStatus({ server: 'failed', error: message });
    // Not stop(): that waits for the start, which is what is running here.
    this.stopping ??= this.closeServer();
    await this.stopping;
    await this.opts.onFatal?.(message);
    this.opts.app.exit(1);
    return undefined;
  }

  /** Polls GET /healthz until it answers 200 (the server listens once startCynode resolves; this confirms it from outside). */
  private async waitUntilAnswering(url: string): Promise<void> {
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 30_000);
    let last: unknown;
    while (Date.now() < deadline) {
      if (this.stopping) return;
      try {
        const res = await this.fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) return;
        last = new Error(`GET /healthz answered ${res.status}`);
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw last ?? new Error('timed out');
  }

  /**
   * A valid access token for the local owner: minted once through the server's auth service,
   * refreshed through the gateway when it nears expiry, minted anew if the refresh is refused.
   * The refresh token never leaves the main process. `renew`: the gateway refused the current
   * access token (its session was ended elsewhere), so do not hand it out again.
   */
  getSession(options: { renew?: boolean } = {}): Promise<DesktopSession> {
    const s = this.session;
    if (options.renew && s && !this.minting) s.expiresAt = 0;
    if (s && s.expiresAt - Date.now() > REFRESH_MARGIN_MS) return Promise.resolve(view(s));
    this.minting ??= this.renew().finally(() => (this.minting = undefined));
    return this.minting;
  }

  private async renew(): Promise<DesktopSession> {
    const server = this.server;
    if (!server || this.current.server !== 'running') throw new Error('the server is not running');
    const old = this.session;
    if (old) {
      try {
        const res = await this.fetch(`${server.gatewayUrl}/v1/auth/refresh`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refresh_token: old.refresh }),
        });
        if (res.ok) {
          const pair = (await res.json()) as { access_token: string; refresh_token: string; expires_in: number };
          this.session = { access: pair.access_token, refresh: pair.refresh_token, expiresAt: Date.now() + pair.expires_in * 1000, user: old.user };
          return view(this.session);
        }
      } catch {
        // fall through to a new session
      }
    }
    const pair = await server.localSession();
    this.session = { access: pair.access_token, refresh: pair.refresh_token, expiresAt: Date.now() + pair.expires_in * 1000, user: { id: pair.user_id, handle: pair.handle } };
    return view(this.session);
  }

  /** The node count in the status, asked of the gateway with the owner's session. */
  async refreshNodes(): Promise<void> {
    const server = this.server;
    if (!server || this.current.server !== 'running') return;
    try {
      const session = await this.getSession();
      const res = await this.fetch(`${server.gatewayUrl}/v1/nodes`, { headers: { authorization: `Bearer ${session.access_token}` }, signal: AbortSignal.timeout(5000) });
      if (!res.ok) return;
      const { nodes } = (await res.json()) as { nodes: Array<{ status: string }> };
      const next = { total: nodes.length, active: nodes.filter((n) => n.status === 'active').length };
      if (this.current.server === 'running' && (next.total !== this.current.nodes?.total || next.active !== this.current.nodes?.active)) {
        this.setStatus({ ...this.current, nodes: next });
      }
    } catch {
      // the next poll tries again
    }
  }

  private pollNodes(): void {
    const every = this.opts.nodePollMs ?? 15_000;
    void this.refreshNodes();
    if (every <= 0) return;
    this.nodeTimer = setInterval(() => void this.refreshNodes(), every);
    this.nodeTimer.unref();
  }

  /** Stops the server and its embedded node; every caller waits for the same stop. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    clearInterval(this.nodeTimer);
    const failed = this.current.server === 'failed';
    if (!failed) this.setStatus({ ...this.current, server: 'stopping' });
    // A quit during start waits for the start to end, then closes what it opened.
    await this.starting?.catch(() => undefined);
    await this.closeServer();
    if (!failed) this.setStatus({ server: 'stopped' });
  }

  private async closeServer(): Promise<void> {
    clearInterval(this.nodeTimer);
    const server = this.server;
    this.server = undefined;
    this.session = undefined;
    if (server) {
      this.log('stopping the embedded server');
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), this.opts.stopTimeoutMs ?? 20_000)));
      const outcome = await Promise.race([server.close().then(() => 'closed' as const, (err: unknown) => (this.log(`stopping failed: ${oneLine(err)}`), 'closed' as const)), limit]);
      clearTimeout(timer);
      this.log(outcome === 'timeout' ? 'the server did not stop in time; quitting anyway' : 'the embedded server stopped');
    }
    this.closed = true;
  }

  private setStatus(status: DesktopStatus): void {
    this.current = status;
    this.opts.onStatus?.(this.status);
  }
}

function view(s: { access: string; expiresAt: number; user: { id: string; handle: string } }): DesktopSession {
  return { access_token: s.access, token_type: 'Bearer', expires_at: s.expiresAt, user: { ...s.user } };
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 500);
}
