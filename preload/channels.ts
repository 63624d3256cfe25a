// IPC channel names shared by the preload and the main process (no Electron import here).
export const CHANNELS = {
  getSession: 'cynode:get-session',
  getStatus: 'cynode:get-status',
  status: 'cynode:status',
  openExternal: 'cynode:open-external',
  appInfo: 'cynode:app-info',
} as const;

export type InvokeChannel = Exclude<(typeof CHANNELS)[keyof typeof CHANNELS], typeof CHANNELS.status>;
