// Navigation lockdown: the window shows the local gateway's console and nothing else. Links to
// the web open in the OS browser, and only after validation.

/** The origin (`http://127.0.0.1:12080`) of a URL, or null when it has none or does not parse. */
export function originOf(url: string): string | null {
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? null : origin;
  } catch {
    return null;
  }
}

/** True only for URLs on the console's own origin (scheme, host and port all equal). */
export function isAppUrl(url: string, appOrigin: string): boolean {
  return originOf(url) === appOrigin;
}

/**
 * A link the OS browser may open: http(s) only, no credentials in it, a real host, and not the
 * console itself (that stays in the window). Returns the normalised URL, or null to refuse.
 */
export function externalUrl(url: string, appOrigin?: string): string | null {
  if (typeof url !== 'string' || url.length > 2048) return null;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
  if (u.username || u.password || !u.hostname) return null;
  if (appOrigin !== undefined && u.origin === appOrigin) return null;
  return u.href;
}

export type NavigationDecision = { action: 'allow' } | { action: 'deny'; openExternal?: string };

/** `will-navigate` / `will-redirect`: stay on the console's origin; elsewhere is refused (web links go to the OS browser). */
export function decideNavigation(url: string, appOrigin: string): NavigationDecision {
  if (isAppUrl(url, appOrigin)) return { action: 'allow' };
  const ext = externalUrl(url, appOrigin);
  return ext ? { action: 'deny', openExternal: ext } : { action: 'deny' };
}

/** `setWindowOpenHandler`: never a new Electron window; web links go to the OS browser. */
export function decideWindowOpen(url: string, appOrigin: string): { action: 'deny'; openExternal?: string } {
  const ext = externalUrl(url, appOrigin);
  return ext ? { action: 'deny', openExternal: ext } : { action: 'deny' };
}

/** The parts of Electron's WebContents the guards use (tests pass an EventEmitter). */
export interface GuardedContents {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Electron's overloaded emitter signature
  on(event: string, listener: (...args: any[]) => void): unknown;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' } | { action: 'allow' }): void;
}

/**
 * Locks one WebContents: navigations off the console's origin are prevented, new windows are
 * always denied, webviews never attach. `appOrigin` is read at each event (the port is known
 * only once the server listens).
 */
export function guardNavigation(contents: GuardedContents, appOrigin: () => string | null, openExternal: (url: string) => void): void {
  const onNavigate = (event: { preventDefault(): void; url?: string }, url?: string) => {
    const target = url ?? event.url ?? '';
    const origin = appOrigin();
    const decision = origin ? decideNavigation(target, origin) : ({ action: 'deny' } as NavigationDecision);
    if (decision.action === 'allow') return;
    event.preventDefault();
    if (decision.openExternal) openExternal(decision.openExternal);
  };
  contents.on('will-navigate', onNavigate);
  contents.on('will-redirect', onNavigate);
  contents.on('will-attach-webview', (event: { preventDefault(): void }) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    const origin = appOrigin();
    const decision = origin ? decideWindowOpen(url, origin) : { action: 'deny' as const };
    if (decision.openExternal) openExternal(decision.openExternal);
    return { action: 'deny' };
  });
}

/**
 * Requests the window's session may make: the console's origin (http and its WebSocket twin),
 * inline data/blob URLs and devtools; nothing else leaves the machine.
 */
export function isAllowedRequest(url: string, appOrigin: string | null): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'devtools:' || u.protocol === 'chrome-extension:') return true;
  if (!appOrigin) return false;
  const app = new URL(appOrigin);
  if (u.protocol === 'ws:' || u.protocol === 'wss:') return u.host === app.host && (u.protocol === 'ws:') === (app.protocol === 'http:');
  return u.origin === app.origin;
}
