// Electron main process: thin on purpose. It starts the same orchestrator `cynode serve` runs
// and shows the console in a locked-down window. The desktop shell proper (tray, keychain,
// desktop sign-in) arrives with the console.
import { app, BrowserWindow } from 'electron';
import { join } from 'node:path';
import { loadConfig } from '../server/config/config';
import { startCynode, type Cynode } from '../server/app';

let cynode: Cynode | undefined;

async function ready(): Promise<void> {
  cynode = await startCynode(loadConfig(process.env, { dataDir: process.env.CYNODE_DATA_DIR || app.getPath('userData') }));
  const win = new BrowserWindow({
    width: 1200,
    height: 800,
    webPreferences: {
      preload: join(__dirname, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
    },
  });
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.webContents.on('will-navigate', (event, url) => {
    if (!cynode || !url.startsWith(cynode.gatewayUrl)) event.preventDefault();
  });
  await win.loadURL(cynode.gatewayUrl);
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.whenReady().then(ready, (err: unknown) => {
    console.error('CyNode failed to start:', err);
    app.exit(1);
  });
  app.on('window-all-closed', () => app.quit());
  app.on('will-quit', (event) => {
    if (!cynode) return;
    event.preventDefault();
    const closing = cynode;
    cynode = undefined;
    void closing.close().finally(() => app.quit());
  });
}
