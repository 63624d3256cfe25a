// The main-process side of the preload API: each channel answers only the console's own frame.
import { CHANNELS } from '../../preload/channels';
import type { AppInfo, DesktopSession, DesktopStatus } from '../../preload/api';
import { externalUrl, isAppUrl } from './navigation';

/** What the handlers need of Electron's ipcMain (tests pass a Map-backed fake). */
export interface IpcMainLike {
  handle(channel: string, handler: (event: IpcInvokeEvent, ...args: unknown[]) => unknown): void;
}
export interface IpcInvokeEvent {
  senderFrame?: { url: string } | null;
}

export interface IpcDeps {
  /** The console's origin; null until the server listens. */
  appOrigin(): string | null;
  getSession(options: { renew: boolean }): Promise<DesktopSession>;
  getStatus(): DesktopStatus;
  appInfo(): AppInfo;
  openExternal(url: string): Promise<void> | void;
}

/** Electron security checklist: validate the sender of every IPC message. */
export function trustedSender(event: IpcInvokeEvent, appOrigin: string | null): boolean {
  const url = event.senderFrame?.url;
  return !!appOrigin && typeof url === 'string' && isAppUrl(url, appOrigin);
}

export function registerIpc(ipc: IpcMainLike, deps: IpcDeps): void {
  const guard =
    <A extends unknown[], R>(fn: (...args: A) => R) =>
    (event: IpcInvokeEvent, ...args: unknown[]) => {
      if (!trustedSender(event, deps.appOrigin())) throw new Error('refused: not the CyNode console');
      return fn(...(args as A));
    };
  ipc.handle(CHANNELS.getSession, guard((options: unknown) => deps.getSession({ renew: (options as { renew?: unknown } | undefined)?.renew === true })));
  ipc.handle(CHANNELS.getStatus, guard(() => deps.getStatus()));
  ipc.handle(CHANNELS.appInfo, guard(() => deps.appInfo()));
  ipc.handle(
    CHANNELS.openExternal,
    guard(async (url: unknown) => {
      const safe = typeof url === 'string' ? externalUrl(url, deps.appOrigin() ?? undefined) : null;
      if (!safe) return false;
      await deps.openExternal(safe);
      return true;
    }),
  );
}
