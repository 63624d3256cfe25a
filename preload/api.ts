// The contract between the desktop window's preload and the console: types only, so the renderer
// may `import type` it without pulling in Electron, main-process or server code.

/** The local owner's sign-in, minted by the main process: the console uses it as a Bearer token. */
export interface DesktopSession {
  access_token: string;
  token_type: 'Bearer';
  /** Epoch milliseconds after which the access token no longer works; call getSession() again before. */
  expires_at: number;
  user: { id: string; handle: string };
}

export type ServerState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** What the tray shows and the window may display: the embedded server and the node pool. */
export interface DesktopStatus {
  server: ServerState;
  /** The gateway's URL once it listens (also the window's origin). */
  gatewayUrl?: string;
  /** Registered nodes and how many of them are active; absent until first counted. */
  nodes?: { total: number; active: number };
  /** Why the server failed to start or stopped; one line, no secrets. */
  error?: string;
}

export interface AppInfo {
  name: string;
  version: string;
  platform: string;
  /** Electron, Chromium and Node versions of the shell. */
  versions: { electron: string; chrome: string; node: string };
  dataDir: string;
}

/**
 * `window.cynode` in the desktop window; absent in LAN browsers. The renderer declares it itself
 * (`declare global { interface Window { cynode?: CynodeDesktopApi } }`), so this file adds no globals.
 */
export interface CynodeDesktopApi {
  readonly desktop: true;
  /**
   * A valid session for the local owner (refreshed by the main process when it nears expiry).
   * After the gateway refused the token (401), ask with `{ renew: true }` for a new one.
   */
  getSession(options?: { renew?: boolean }): Promise<DesktopSession>;
  /** Calls back with every status change, starting with the current one; returns an unsubscribe function. */
  onStatus(callback: (status: DesktopStatus) => void): () => void;
  /** Opens an http(s) link in the OS browser; resolves false when the URL was refused. */
  openExternal(url: string): Promise<boolean>;
  appInfo(): Promise<AppInfo>;
}
