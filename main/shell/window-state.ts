// The window comes back where the person left it: bounds and maximised state in a small JSON
// file in the app's data folder, checked against the displays present now.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DEFAULT_SIZE, MIN_SIZE, type Bounds } from './window-options';

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface WindowState {
  bounds: Rect;
  maximized: boolean;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 1_000_000;

/** The saved state, or null when there is none or it is not a state this code wrote. */
export async function readWindowState(file: string): Promise<WindowState | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
  const s = raw as { bounds?: Partial<Rect>; maximized?: unknown } | null;
  const b = s?.bounds;
  if (!b || !isInt(b.x) || !isInt(b.y) || !isInt(b.width) || !isInt(b.height) || b.width <= 0 || b.height <= 0) return null;
  return { bounds: { x: b.x, y: b.y, width: b.width, height: b.height }, maximized: s!.maximized === true };
}

/** Written beside and renamed over: a crash mid-write never leaves half a file. */
export async function writeWindowState(file: string, state: WindowState): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

function overlap(a: Rect, b: Rect): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

/**
 * Where to open the window. The saved bounds when enough of the window's top (its title bar) lies
 * on a display that exists now, shrunk to fit that display; otherwise the default size, centred
 * on the primary display (the first of `workAreas`).
 */
export function restoreBounds(saved: WindowState | null, workAreas: Rect[]): Bounds {
  const primary = workAreas[0];
  const fallback = (): Bounds => {
    if (!primary) return { ...DEFAULT_SIZE };
    const width = Math.min(DEFAULT_SIZE.width, primary.width);
    const height = Math.min(DEFAULT_SIZE.height, primary.height);
    return { x: primary.x + Math.round((primary.width - width) / 2), y: primary.y + Math.round((primary.height - height) / 2), width, height };
  };
  if (!saved) return fallback();
  const b = saved.bounds;
  const titleBar: Rect = { x: b.x, y: b.y, width: b.width, height: Math.min(40, b.height) };
  let best: Rect | undefined;
  let bestArea = 0;
  for (const area of workAreas) {
    const o = overlap(titleBar, area);
    if (o > bestArea) [best, bestArea] = [area, o];
  }
  // At least a 100 px wide grip of the title bar must be reachable.
  if (!best || bestArea < 100 * Math.min(40, b.height)) return fallback();
  const width = Math.max(MIN_SIZE.width, Math.min(b.width, best.width));
  const height = Math.max(MIN_SIZE.height, Math.min(b.height, best.height));
  const x = Math.min(Math.max(b.x, best.x), best.x + best.width - width);
  const y = Math.min(Math.max(b.y, best.y), best.y + best.height - height);
  return { x, y, width, height };
}

/** The parts of a BrowserWindow the keeper reads (tests pass an EventEmitter). */
export interface TrackedWindow {
  on(event: 'resize' | 'move' | 'maximize' | 'unmaximize' | 'close', listener: () => void): unknown;
  getNormalBounds(): Rect;
  isMaximized(): boolean;
  isMinimized(): boolean;
  isFullScreen(): boolean;
}

/**
 * Saves the window's state a moment after it stops moving or resizing, and at once when it
 * closes. `flush()` waits for the last write (called before quitting).
 */
export function keepWindowState(win: TrackedWindow, file: string, opts: { debounceMs?: number; onError?: (err: unknown) => void } = {}) {
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  const snapshot = (): WindowState | null => {
    if (win.isMinimized() || win.isFullScreen()) return null;
    return { bounds: win.getNormalBounds(), maximized: win.isMaximized() };
  };
  const save = () => {
    clearTimeout(timer);
    timer = undefined;
    const state = snapshot();
    if (!state) return writing;
    writing = writing.then(() => writeWindowState(file, state)).catch((err: unknown) => opts.onError?.(err));
    return writing;
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(save, opts.debounceMs ?? 500);
  };
  for (const event of ['resize', 'move', 'maximize', 'unmaximize'] as const) win.on(event, later);
  win.on('close', () => void save());
  return { flush: () => (timer ? save() : writing) };
}
