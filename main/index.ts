// Electron main process: wiring only. Every decision (window options, navigation, CSP, session
// lockdown, IPC, tray contents, window state, keychain, start/stop) lives in main/shell/, plain
// Node modules unit-tested without Electron; this is the only main-process file importing 'electron'.
import { app, BrowserWindow, Menu, Tray, dialog, ipcMain, nativeImage, screen, session, shell } from 'electron';
import { join } from 'node:path';
import { loadConfig } from '../server/config/config';
import { VERSION, startCynode } from '../server/app';
import { CHANNELS } from '../preload/channels';
import type { DesktopStatus } from '../preload/api';
import { DesktopShell } from './shell/lifecycle';
import { windowOptions } from './shell/window-options';
import { guardNavigation, originOf } from './shell/navigation';
import { lockSession } from './shell/security';
import { registerIpc } from './shell/ipc';
import { keepWindowState, readWindowState, restoreBounds } from './shell/window-state';
import { trayIconBitmap, trayMenu, trayTooltip } from './shell/tray';
import { desktopMasterKey } from './shell/keychain';

app.setName('CyNode');
const dataDir = process.env.CYNODE_DATA_DIR || app.getPath('userData');
const stateFile = join(app.getPath('userData'), 'window-state.json');
const log = (line: string) => console.log(`${new Date().toISOString()} desktop: ${line}`);

let win: BrowserWindow | undefined;
let tray: Tray | undefined;
let prepared = false;

const appOrigin = () => (desktop.gatewayUrl ? originOf(desktop.gatewayUrl) : null);
const openExternal = (url: string) => void shell.openExternal(url).catch((err: unknown) => log(`could not open a link: ${String(err)}`));

const desktop = new DesktopShell({
  app,
  async start() {
    prepare();
    // CYNODE_MASTER_KEY wins, as headless; otherwise the OS keychain, else the key file.
    let masterKey: string | undefined;
    if (!process.env.CYNODE_MASTER_KEY) {
      const key = await desktopMasterKey(dataDir);
      log(key.source === 'keychain' ? 'master key: OS keychain' : `master key: key file in the data folder (${key.reason})`);
      masterKey = key.masterKey;
    }
    return startCynode(loadConfig(process.env, { dataDir, ...(masterKey ? { masterKey } : {}) }));
  },
  showWindow: (url) => openWindow(url),
  focusWindow,
  onStatus(status) {
    updateTray(status);
    if (win && !win.isDestroyed()) win.webContents.send(CHANNELS.status, status);
  },
  onFatal: (message) => dialog.showErrorBox('CyNode', message),
  log,
});

function focusWindow(): void {
  if (!win) return;
  if (win.isMinimized()) win.restore();
  win.show();
  win.focus();
}

/** Once Electron is ready and before any page loads: lock the session, answer IPC, show the tray. */
function prepare(): void {
  if (prepared) return;
  prepared = true;
  lockSession(session.defaultSession, appOrigin, { onBlocked: (url) => log(`blocked a request to ${originOf(url) ?? 'a non-web URL'}`) });
  registerIpc(ipcMain, {
    appOrigin,
    getSession: (options) => desktop.getSession(options),
    getStatus: () => desktop.status,
    appInfo: () => ({
      name: 'CyNode',
      version: VERSION,
      platform: process.platform,
      versions: { electron: process.versions.electron ?? '', chrome: process.versions.chrome ?? '', node: process.versions.node },
      dataDir,
    }),
    openExternal,
  });
  tray = new Tray(trayImage('starting'));
  tray.on('click', focusWindow);
  updateTray(desktop.status);
}

function trayImage(state: DesktopStatus['server']) {
  return nativeImage.createFromBitmap(trayIconBitmap(state, 32), { width: 32, height: 32, scaleFactor: 2 });
}

function updateTray(status: DesktopStatus): void {
  if (!tray || tray.isDestroyed()) return;
  tray.setImage(trayImage(status.server));
  tray.setToolTip(trayTooltip(status));
  tray.setContextMenu(
    Menu.buildFromTemplate(
      trayMenu(status, {
        open: () => (win ? focusWindow() : desktop.gatewayUrl && void openWindow(desktop.gatewayUrl)),
        openInBrowser: () => desktop.gatewayUrl && openExternal(`${desktop.gatewayUrl}/`),
        quit: () => app.quit(),
      }),
    ),
  );
}

async function openWindow(gatewayUrl: string): Promise<void> {
  const saved = await readWindowState(stateFile);
  const bounds = restoreBounds(saved, screen.getAllDisplays().map((d) => d.workArea));
  win = new BrowserWindow(windowOptions({ preloadPath: join(__dirname, '../preload/index.cjs'), bounds }));
  if (saved?.maximized) win.maximize();
  keepWindowState(win, stateFile, { onError: (err) => log(`could not save the window state: ${String(err)}`) });
  win.once('ready-to-show', () => win?.show());
  win.on('closed', () => (win = undefined));
  // The console is served by the gateway; the session token reaches it over IPC, never in the URL.
  await win.loadURL(`${gatewayUrl}/`);
}

if (desktop.run()) {
  // Every WebContents, including any a page might create: no navigation off the console, no new windows, no webviews.
  app.on('web-contents-created', (_event, contents) => guardNavigation(contents, appOrigin, openExternal));
  app.on('activate', () => {
    if (win) focusWindow();
    else if (desktop.gatewayUrl) void openWindow(desktop.gatewayUrl);
  });
}
