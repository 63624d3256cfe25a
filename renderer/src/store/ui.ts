import { create } from 'zustand';

export type Theme = 'system' | 'light' | 'dark';

function read(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}
function write(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // storage disabled
  }
}

function applyTheme(theme: Theme): void {
  const root = document.documentElement;
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
}

export interface Toast {
  id: number;
  text: string;
  kind: 'info' | 'error';
}

interface UiState {
  path: string;
  theme: Theme;
  projectId: string | null;
  model: string | null;
  toasts: Toast[];
  navigate(path: string, replace?: boolean): void;
  setTheme(theme: Theme): void;
  setProject(id: string | null): void;
  setModel(id: string | null): void;
  toast(text: string, kind?: Toast['kind']): void;
}

let toastId = 0;
const initialTheme = (read('cynode.theme') as Theme | null) ?? 'system';
applyTheme(initialTheme);

export const useUi = create<UiState>((set) => ({
  path: location.pathname,
  theme: initialTheme,
  projectId: read('cynode.project'),
  model: read('cynode.model'),
  toasts: [],
  navigate(path, replace = false) {
    if (path === location.pathname) return;
    if (replace) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    set({ path });
  },
  setTheme(theme) {
    applyTheme(theme);
    write('cynode.theme', theme === 'system' ? null : theme);
    set({ theme });
  },
  setProject(projectId) {
    write('cynode.project', projectId);
    set({ projectId });
  },
  setModel(model) {
    write('cynode.model', model);
    set({ model });
  },
  toast(text, kind = 'info') {
    const id = ++toastId;
    set((s) => ({ toasts: [...s.toasts, { id, text, kind }] }));
    setTimeout(() => set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) })), kind === 'error' ? 6000 : 3000);
  },
}));

window.addEventListener('popstate', () => useUi.setState({ path: location.pathname }));
