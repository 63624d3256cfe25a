import { useState, type ReactNode } from 'react';
import { canOperate, useSession } from '../store/session';
import { useUi, type Theme } from '../store/ui';
import { Icon, type IconName } from './Icon';

interface NavItem {
  path: string;
  label: string;
  icon: IconName;
  show: boolean;
}

export function Link({ to, children, className, onClick }: { to: string; children: ReactNode; className?: string; onClick?: () => void }) {
  const navigate = useUi((s) => s.navigate);
  return (
    <a
      href={to}
      className={className}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(to);
        onClick?.();
      }}
    >
      {children}
    </a>
  );
}

const THEMES: Theme[] = ['system', 'light', 'dark'];
const THEME_ICON: Record<Theme, IconName> = { system: 'auto', light: 'sun', dark: 'moon' };

export function ThemeToggle() {
  const { theme, setTheme } = useUi();
  const next = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length]!;
  return (
    <button type="button" className="btn ghost icon" onClick={() => setTheme(next)} title={`Theme: ${theme} (switch to ${next})`} aria-label={`Theme: ${theme}`}>
      <Icon name={THEME_ICON[theme]} />
    </button>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const path = useUi((s) => s.path);
  const toasts = useUi((s) => s.toasts);
  const { me, desktop, signOut } = useSession();
  const [open, setOpen] = useState(false);
  const nav: NavItem[] = [
    { path: '/chat', label: 'Chat', icon: 'chat', show: true },
    { path: '/tasks', label: 'Tasks', icon: 'tasks', show: true },
    { path: '/runs', label: 'Runs', icon: 'runs', show: true },
    { path: '/nodes', label: 'Nodes', icon: 'nodes', show: canOperate(me) },
    { path: '/connectors', label: 'Connectors', icon: 'plug', show: true },
    { path: '/policy', label: 'Policy', icon: 'lock', show: me?.roles.includes('admin') ?? false },
    { path: '/admin', label: 'Admin', icon: 'admin', show: true },
    { path: '/settings', label: 'Settings', icon: 'settings', show: true },
  ];
  const current = nav.find((n) => path === n.path || path.startsWith(n.path + '/'));
  return (
    <div className={`shell ${open ? 'nav-open' : ''}`}>
      <aside className="sidebar">
        <div className="brand">
          <span className="logo">
            <Icon name="logo" size={20} />
          </span>
          <span>CyNode</span>
          <button type="button" className="btn ghost icon menu-toggle" aria-label="Menu" aria-expanded={open} onClick={() => setOpen(!open)}>
            <Icon name="menu" />
          </button>
        </div>
        <nav aria-label="Main">
          {nav
            .filter((n) => n.show)
            .map((n) => (
              <Link key={n.path} to={n.path} className={`nav-item ${current?.path === n.path ? 'active' : ''}`} onClick={() => setOpen(false)}>
                <Icon name={n.icon} />
                {n.label}
              </Link>
            ))}
        </nav>
        <div className="sidebar-foot">
          <span className="who" title={me?.roles.join(', ')}>
            {me?.display_name ?? me?.handle}
          </span>
          <ThemeToggle />
          {!desktop && (
            <button type="button" className="btn ghost small" onClick={() => void signOut()}>
              Sign out
            </button>
          )}
        </div>
      </aside>
      <main className="content">{children}</main>
      <div className="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast ${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
            {t.text}
          </div>
        ))}
      </div>
    </div>
  );
}
