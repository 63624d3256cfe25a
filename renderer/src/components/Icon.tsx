// A few line icons (24x24, stroke): no icon font, no emoji (servers and LAN browsers may lack the font).
const PATHS = {
  chat: 'M4 5h16v11H8l-4 4z',
  tasks: 'M8 6l10 6-10 6z',
  runs: 'M4 6h6v5H4zM14 13h6v5h-6zM7 11v4h7',
  nodes: 'M12 3l8 4.5v9L12 21l-8-4.5v-9zM12 12l8-4.5M12 12v9M12 12L4 7.5',
  admin: 'M12 3l7 3v5c0 5-3 8-7 10-4-2-7-5-7-10V6z',
  settings: 'M4 7h10M18 7h2M4 17h2M10 17h10M14 5v4M6 15v4',
  plug: 'M9 3v5M15 3v5M6 8h12v3a6 6 0 01-12 0zM12 17v4',
  lock: 'M6 11h12v9H6zM9 11V8a3 3 0 016 0v3',
  menu: 'M4 7h16M4 12h16M4 17h16',
  sun: 'M12 8a4 4 0 100 8 4 4 0 000-8zM12 2v2M12 20v2M4 12H2M22 12h-2M5 5l1.5 1.5M17.5 17.5L19 19M5 19l1.5-1.5M17.5 6.5L19 5',
  moon: 'M20 14A8 8 0 0110 4a8 8 0 1010 10z',
  auto: 'M12 3a9 9 0 100 18zM12 3a9 9 0 110 18',
  logo: 'M12 2l9 10-9 10-9-10z',
} as const;

export type IconName = keyof typeof PATHS;

export function Icon({ name, size = 18 }: { name: IconName; size?: number }) {
  return (
    <svg className="icon" width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={1.8} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <path d={PATHS[name]} fill={name === 'logo' ? 'currentColor' : 'none'} />
    </svg>
  );
}
