// The only surface the console may call in the desktop window: window.cynode, typed by
// preload/api.ts. Runs sandboxed (no Node), so it holds nothing but IPC calls.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { AppInfo, CynodeDesktopApi, DesktopSession, DesktopStatus } from './api';
import { CHANNELS } from './channels';

const api: CynodeDesktopApi = {
  desktop: true,
  getSession: (options) => ipcRenderer.invoke(CHANNELS.getSession, { renew: options?.renew === true }) as Promise<DesktopSession>,
  onStatus(callback) {
    const listener = (_event: IpcRendererEvent, status: DesktopStatus) => callback(status);
    ipcRenderer.on(CHANNELS.status, listener);
    void (ipcRenderer.invoke(CHANNELS.getStatus) as Promise<DesktopStatus>).then(callback, () => {});
    return () => void ipcRenderer.removeListener(CHANNELS.status, listener);
  },
  openExternal: (url) => ipcRenderer.invoke(CHANNELS.openExternal, String(url)) as Promise<boolean>,
  appInfo: () => ipcRenderer.invoke(CHANNELS.appInfo) as Promise<AppInfo>,
};

contextBridge.exposeInMainWorld('cynode', api);
