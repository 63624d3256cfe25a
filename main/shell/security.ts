// The window session's lockdown: no permission is ever granted, nothing but the console's origin
// is requested, and every response from it carries the desktop CSP.
import { buildCsp, withCsp, type ResponseHeaders } from './csp';
import { isAllowedRequest } from './navigation';

/** What the lockdown needs of Electron's Session (tests pass a fake that records the handlers). */
export interface SessionLike {
  setPermissionRequestHandler(handler: ((webContents: unknown, permission: string, callback: (granted: boolean) => void) => void) | null): void;
  setPermissionCheckHandler(handler: ((webContents: unknown, permission: string) => boolean) | null): void;
  webRequest: {
    onBeforeRequest(listener: (details: { url: string }, callback: (response: { cancel?: boolean }) => void) => void): void;
    onHeadersReceived(listener: (details: { url: string; responseHeaders?: ResponseHeaders }, callback: (response: { cancel?: boolean; responseHeaders?: ResponseHeaders }) => void) => void): void;
  };
}

export function lockSession(session: SessionLike, appOrigin: () => string | null, opts: { csp?: string; onBlocked?: (url: string) => void } = {}): void {
  const csp = opts.csp ?? buildCsp();
  // Camera, microphone, notifications, geolocation, clipboard reads…: the console needs none.
  session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
  session.webRequest.onBeforeRequest((details, callback) => {
    const allowed = isAllowedRequest(details.url, appOrigin());
    if (!allowed) opts.onBlocked?.(details.url);
    callback({ cancel: !allowed });
  });
  session.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: withCsp(details.responseHeaders, csp) });
  });
}
