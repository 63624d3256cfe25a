// The desktop window's security, asserted on the main-process facade (no Electron binary here):
// webPreferences, navigation and new-window lockdown, external links, CSP, the session lockdown
// and the IPC sender check.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { secureWebPreferences, windowOptions } from '../../main/shell/window-options';
import { decideNavigation, decideWindowOpen, externalUrl, guardNavigation, isAllowedRequest } from '../../main/shell/navigation';
import { buildCsp, withCsp } from '../../main/shell/csp';
import { lockSession, type SessionLike } from '../../main/shell/security';
import { registerIpc, type IpcInvokeEvent } from '../../main/shell/ipc';
import { CHANNELS } from '../../preload/channels';

const ORIGIN = 'http://127.0.0.1:12080';

describe('desktop window options', () => {
  it('webPreferences are exactly the secure set: isolated, sandboxed, no Node, web security on, no webviews', () => {
    expect(secureWebPreferences('/app/out/preload/index.cjs')).toStrictEqual({
      preload: '/app/out/preload/index.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      navigateOnDragDrop: false,
      safeDialogs: true,
      spellcheck: true,
    });
  });

  it('the BrowserWindow options carry those preferences and the restored bounds, and stay hidden until painted', () => {
    const o = windowOptions({ preloadPath: '/p.cjs', bounds: { x: 10, y: 20, width: 900, height: 700 } });
    expect(o.webPreferences).toStrictEqual(secureWebPreferences('/p.cjs'));
    expect(o).toMatchObject({ x: 10, y: 20, width: 900, height: 700, show: false });
    expect(o).not.toHaveProperty('webPreferences.enableBlinkFeatures');
  });
});

describe('navigation lockdown', () => {
  it('stays on the gateway origin: same origin allowed, any other scheme, host or port denied', () => {
    expect(decideNavigation(`${ORIGIN}/chat/threads/1`, ORIGIN)).toEqual({ action: 'allow' });
    expect(decideNavigation(`${ORIGIN}/?q=1#x`, ORIGIN)).toEqual({ action: 'allow' });
    for (const url of ['http://127.0.0.1:12081/', 'http://localhost:12080/', 'https://127.0.0.1:12080/', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/html,<script>1</script>', 'not a url']) {
      expect(decideNavigation(url, ORIGIN).action, url).toBe('deny');
    }
  });

  it('a web link navigated to is denied in the window and handed to the OS browser; other schemes are not', () => {
    expect(decideNavigation('https://ollama.com/library', ORIGIN)).toEqual({ action: 'deny', openExternal: 'https://ollama.com/library' });
    expect(decideNavigation('file:///etc/passwd', ORIGIN)).toEqual({ action: 'deny' });
  });

  it('window.open is always denied; only validated http(s) links reach the OS browser', () => {
    expect(decideWindowOpen(`${ORIGIN}/tasks`, ORIGIN)).toEqual({ action: 'deny' });
    expect(decideWindowOpen('https://github.com/x', ORIGIN)).toEqual({ action: 'deny', openExternal: 'https://github.com/x' });
    expect(decideWindowOpen('smb://server/share', ORIGIN)).toEqual({ action: 'deny' });
  });

  it('external links are validated: http(s) only, no credentials, a host, bounded length', () => {
    expect(externalUrl('https://example.com/a b')).toBe('https://example.com/a%20b');
    expect(externalUrl('HTTP://Example.COM')).toBe('http://example.com/');
    for (const bad of ['file:///etc/passwd', 'javascript:alert(1)', 'ms-msdt:/id', 'https://user:pw@example.com/', `https://example.com/${'a'.repeat(3000)}`, 'vscode://x', '//example.com', '']) {
      expect(externalUrl(bad), bad).toBeNull();
    }
    expect(externalUrl(`${ORIGIN}/x`, ORIGIN)).toBeNull();
  });

  it('the guards installed on a WebContents prevent off-origin navigation, deny every window and every webview', () => {
    const contents = Object.assign(new EventEmitter(), {
      openHandler: undefined as undefined | ((d: { url: string }) => { action: string }),
      setWindowOpenHandler(h: (d: { url: string }) => { action: 'deny' } | { action: 'allow' }) {
        this.openHandler = h;
      },
    });
    const opened: string[] = [];
    guardNavigation(contents, () => ORIGIN, (url) => opened.push(url));
    const navigate = (event: string, url: string) => {
      let prevented = false;
      contents.emit(event, { preventDefault: () => (prevented = true) }, url);
      return prevented;
    };
    expect(navigate('will-navigate', `${ORIGIN}/runs`)).toBe(false);
    expect(navigate('will-navigate', 'https://evil.example/phish')).toBe(true);
    expect(navigate('will-redirect', 'http://10.0.0.1/')).toBe(true);
    expect(navigate('will-navigate', 'file:///home')).toBe(true);
    let webview = false;
    contents.emit('will-attach-webview', { preventDefault: () => (webview = true) });
    expect(webview).toBe(true);
    expect(contents.openHandler!({ url: `${ORIGIN}/x` })).toEqual({ action: 'deny' });
    expect(contents.openHandler!({ url: 'https://docs.example/' })).toEqual({ action: 'deny' });
    expect(opened).toEqual(['https://evil.example/phish', 'http://10.0.0.1/', 'https://docs.example/']);
  });

  it('before the server listens there is no allowed origin: everything is denied', () => {
    const contents = Object.assign(new EventEmitter(), { setWindowOpenHandler() {} });
    guardNavigation(contents, () => null, () => {});
    let prevented = false;
    contents.emit('will-navigate', { preventDefault: () => (prevented = true) }, `${ORIGIN}/`);
    expect(prevented).toBe(true);
  });

  it('the session requests nothing but the gateway origin (and its WebSocket), data/blob URLs and devtools', () => {
    expect(isAllowedRequest(`${ORIGIN}/assets/index.js`, ORIGIN)).toBe(true);
    expect(isAllowedRequest('ws://127.0.0.1:12080/v1/x', ORIGIN)).toBe(true);
    expect(isAllowedRequest('data:image/png;base64,AA', ORIGIN)).toBe(true);
    for (const url of ['https://fonts.googleapis.com/css', 'http://127.0.0.1:11434/api/tags', 'wss://127.0.0.1:12080/', 'file:///etc/passwd', 'ws://evil.example/']) {
      expect(isAllowedRequest(url, ORIGIN), url).toBe(false);
    }
    expect(isAllowedRequest(`${ORIGIN}/`, null)).toBe(false);
  });
});

describe('Content-Security-Policy', () => {
  const directives = (csp: string) => new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...sources]) => [name!, sources]));

  it('self only, no eval, no inline script, nothing framed or framing, no plugins', () => {
    const d = directives(buildCsp());
    expect(d.get('default-src')).toEqual(["'self'"]);
    expect(d.get('script-src')).toEqual(["'self'"]);
    expect(d.get('connect-src')).toEqual(["'self'"]);
    expect(d.get('object-src')).toEqual(["'none'"]);
    expect(d.get('frame-ancestors')).toEqual(["'none'"]);
    expect(d.get('frame-src')).toEqual(["'none'"]);
    expect(d.get('base-uri')).toEqual(["'none'"]);
    expect(buildCsp()).not.toMatch(/unsafe-eval|wasm-unsafe-eval|\*|https?:/);
    expect(d.get('style-src')).toEqual(["'self'"]);
    expect(buildCsp()).not.toContain('unsafe-inline');
  });

  it('is added to every response, next to a policy the gateway already sent (both apply)', () => {
    const csp = buildCsp();
    expect(withCsp({ 'Content-Type': ['text/html'] })).toEqual({ 'Content-Type': ['text/html'], 'Content-Security-Policy': [csp] });
    expect(withCsp(undefined)).toEqual({ 'Content-Security-Policy': [csp] });
    expect(withCsp({ 'content-security-policy': ["default-src 'self'"] })).toEqual({ 'content-security-policy': ["default-src 'self'", csp] });
  });

  it('lockSession denies every permission, cancels off-origin requests and sets the CSP on responses', () => {
    const handlers: Record<string, (...args: any[]) => void> = {};
    const session: SessionLike = {
      setPermissionRequestHandler: (h) => (handlers.request = h!),
      setPermissionCheckHandler: (h) => (handlers.check = h!),
      webRequest: { onBeforeRequest: (l) => (handlers.before = l), onHeadersReceived: (l) => (handlers.headers = l) },
    };
    const blocked: string[] = [];
    lockSession(session, () => ORIGIN, { onBlocked: (u) => blocked.push(u) });
    for (const permission of ['media', 'notifications', 'geolocation', 'clipboard-read', 'openExternal']) {
      let granted: boolean | undefined;
      handlers.request!({}, permission, (g: boolean) => (granted = g));
      expect(granted, permission).toBe(false);
      expect((handlers.check as any)({}, permission)).toBe(false);
    }
    const cancel = (url: string) => {
      let answer: any;
      handlers.before!({ url }, (r: any) => (answer = r));
      return answer.cancel;
    };
    expect(cancel(`${ORIGIN}/v1/models`)).toBe(false);
    expect(cancel('https://cdn.example/x.js')).toBe(true);
    expect(blocked).toEqual(['https://cdn.example/x.js']);
    let headers: any;
    handlers.headers!({ url: `${ORIGIN}/`, responseHeaders: { 'Content-Type': ['text/html'] } }, (r: any) => (headers = r.responseHeaders));
    expect(headers['Content-Security-Policy']).toEqual([buildCsp()]);
  });
});

describe('IPC: the preload API answers only the console frame', () => {
  function setup() {
    const handlers = new Map<string, (event: IpcInvokeEvent, ...args: unknown[]) => unknown>();
    const opened: string[] = [];
    const asked: Array<{ renew: boolean }> = [];
    registerIpc(
      { handle: (channel, fn) => handlers.set(channel, fn) },
      {
        appOrigin: () => ORIGIN,
        getSession: async (options) => (asked.push(options), { access_token: 'tok', token_type: 'Bearer', expires_at: 1, user: { id: 'u', handle: 'admin' } }),
        getStatus: () => ({ server: 'running', gatewayUrl: ORIGIN }),
        appInfo: () => ({ name: 'CyNode', version: '0', platform: 'linux', versions: { electron: '', chrome: '', node: '' }, dataDir: '/d' }),
        openExternal: (url) => void opened.push(url),
      },
    );
    return { handlers, opened, asked };
  }
  const console = { senderFrame: { url: `${ORIGIN}/chat` } };

  it('registers exactly the typed channels', () => {
    expect([...setup().handlers.keys()].sort()).toEqual([CHANNELS.appInfo, CHANNELS.getSession, CHANNELS.getStatus, CHANNELS.openExternal].sort());
  });

  it('hands the session to the console and refuses any other sender', async () => {
    const { handlers, asked } = setup();
    const get = handlers.get(CHANNELS.getSession)!;
    await expect(get(console)).resolves.toMatchObject({ access_token: 'tok' });
    await expect(get(console, { renew: true })).resolves.toMatchObject({ access_token: 'tok' });
    expect(asked).toEqual([{ renew: false }, { renew: true }]);
    for (const event of [{ senderFrame: { url: 'https://evil.example/' } }, { senderFrame: { url: 'http://127.0.0.1:9999/' } }, { senderFrame: null }, {}]) {
      expect(() => get(event)).toThrow(/refused/);
    }
  });

  it('openExternal opens validated http(s) links only', async () => {
    const { handlers, opened } = setup();
    const open = handlers.get(CHANNELS.openExternal)!;
    await expect(open(console, 'https://ollama.com/')).resolves.toBe(true);
    await expect(open(console, 'file:///etc/passwd')).resolves.toBe(false);
    await expect(open(console, 'javascript:alert(1)')).resolves.toBe(false);
    await expect(open(console, { toString: () => 'https://x.example/' })).resolves.toBe(false);
    expect(opened).toEqual(['https://ollama.com/']);
  });
});
