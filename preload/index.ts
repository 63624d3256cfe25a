// The only surface the console may call in the desktop window. Kept deliberately small and typed.
import { contextBridge } from 'electron';

export interface CynodeDesktopBridge {
  readonly platform: string;
  readonly desktop: true;
}

const bridge: CynodeDesktopBridge = { platform: process.platform, desktop: true };
contextBridge.exposeInMainWorld('cynode', bridge);
