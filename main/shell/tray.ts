// The tray icon: a status dot (drawn here, no image file) and a menu saying whether the server
// is up and how many nodes are active, with Open and Quit.
import type { DesktopStatus } from '../../preload/api';

export interface TrayItem {
  label?: string;
  type?: 'normal' | 'separator';
  enabled?: boolean;
  click?: () => void;
}

const SERVER_LABEL: Record<DesktopStatus['server'], string> = {
  starting: 'Server starting…',
  running: 'Server running',
  stopping: 'Server stopping…',
  stopped: 'Server stopped',
  failed: 'Server failed to start',
};

export function nodesLabel(status: DesktopStatus): string {
  if (status.server !== 'running' || !status.nodes) return 'Nodes: –';
  const { total, active } = status.nodes;
  if (total === 0) return 'Nodes: none joined';
  return `Nodes: ${active} active of ${total}`;
}

export function trayTooltip(status: DesktopStatus): string {
  return status.server === 'running' ? `CyNode — ${SERVER_LABEL.running.toLowerCase()}, ${nodesLabel(status).toLowerCase()}` : `CyNode — ${SERVER_LABEL[status.server].toLowerCase()}`;
}

export function trayMenu(status: DesktopStatus, actions: { open(): void; openInBrowser(): void; quit(): void }): TrayItem[] {
  const running = status.server === 'running';
  return [
    { label: SERVER_LABEL[status.server], enabled: false },
    ...(running && status.gatewayUrl ? [{ label: status.gatewayUrl, enabled: false }] : []),
    { label: nodesLabel(status), enabled: false },
    { type: 'separator' },
    { label: 'Open CyNode', enabled: running, click: actions.open },
    { label: 'Open in browser', enabled: running, click: actions.openInBrowser },
    { type: 'separator' },
    { label: 'Quit CyNode', enabled: status.server !== 'stopping', click: actions.quit },
  ];
}

const DOT_COLOUR: Record<DesktopStatus['server'], readonly [number, number, number]> = {
  starting: [0xe0, 0xa0, 0x20],
  running: [0x2e, 0xb8, 0x5c],
  stopping: [0xe0, 0xa0, 0x20],
  stopped: [0x80, 0x80, 0x80],
  failed: [0xd9, 0x3a, 0x3a],
};

/**
 * A `size`×`size` BGRA bitmap (for nativeImage.createFromBitmap): a ring in the status colour
 * around a filled centre, antialiased at the edges, transparent elsewhere.
 */
export function trayIconBitmap(state: DesktopStatus['server'], size = 32): Buffer {
  const [r, g, b] = DOT_COLOUR[state];
  const buf = Buffer.alloc(size * size * 4);
  const c = (size - 1) / 2;
  const outer = size / 2 - 0.5;
  const inner = outer * 0.42;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x - c, y - c);
      const edge = Math.max(0, Math.min(1, outer - d + 0.5));
      const ring = d > outer * 0.72 || d < inner ? 1 : 0.35;
      const a = Math.round(255 * edge * ring);
      const i = (y * size + x) * 4;
      buf[i] = b;
      buf[i + 1] = g;
      buf[i + 2] = r;
      buf[i + 3] = a;
    }
  }
  return buf;
}
