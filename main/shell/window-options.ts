// The desktop window's options: the secure webPreferences (Electron's security checklist) and
// its size. Plain data, so the unit tests can assert the exact set.

export interface SecureWebPreferences {
  preload: string;
  contextIsolation: true;
  sandbox: true;
  nodeIntegration: false;
  nodeIntegrationInWorker: false;
  nodeIntegrationInSubFrames: false;
  webSecurity: true;
  allowRunningInsecureContent: false;
  webviewTag: false;
  experimentalFeatures: false;
  navigateOnDragDrop: false;
  safeDialogs: true;
  spellcheck: true;
}

/** Everything the window's renderer may do: nothing Node, nothing remote, no webviews. */
export function secureWebPreferences(preloadPath: string): SecureWebPreferences {
  return {
    preload: preloadPath,
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
  };
}

export interface Bounds {
  x?: number;
  y?: number;
  width: number;
  height: number;
}

/** The BrowserWindow constructor options: restored bounds, shown once the console has painted. */
export function windowOptions(opts: { preloadPath: string; bounds: Bounds; title?: string; backgroundColor?: string }) {
  return {
    ...opts.bounds,
    minWidth: MIN_SIZE.width,
    minHeight: MIN_SIZE.height,
    title: opts.title ?? 'CyNode',
    show: false,
    backgroundColor: opts.backgroundColor ?? '#111418',
    autoHideMenuBar: true,
    webPreferences: secureWebPreferences(opts.preloadPath),
  };
}

export const MIN_SIZE = { width: 420, height: 480 } as const;
export const DEFAULT_SIZE = { width: 1280, height: 820 } as const;
