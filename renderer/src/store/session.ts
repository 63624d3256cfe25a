import { create } from 'zustand';
import { api, configureAuth, errorText, gateway, login, ok, refreshTokens } from '../api/client';
import type { DesktopSession, Me, TokenPair } from '../api/types';

const REFRESH_KEY = 'cynode.refresh';

type Status = 'loading' | 'signed-out' | 'signed-in';

interface SessionState {
  status: Status;
  me: Me | null;
  /** Signed in by the desktop shell (no password, no sign-out to a password page). */
  desktop: boolean;
  error: string | null;
  init(): Promise<void>;
  signIn(handle: string, password: string): Promise<void>;
  signOut(): Promise<void>;
  isAdmin(): boolean;
}

function storedRefresh(): string | null {
  try {
    return localStorage.getItem(REFRESH_KEY);
  } catch {
    return null;
  }
}

function keepRefresh(token: string | undefined): void {
  try {
    if (token) localStorage.setItem(REFRESH_KEY, token);
    else localStorage.removeItem(REFRESH_KEY);
  } catch {
    // storage disabled: the session lasts as long as the page
  }
}

let refreshToken: string | undefined;

/** Renews the access token: the desktop asks its shell again, a browser uses its refresh token. */
async function renew(): Promise<{ accessToken: string; refreshToken?: string } | null> {
  const bridge = window.cynode;
  if (useSession.getState().desktop && bridge?.getSession) {
    // The gateway refused the token: the shell mints a new one.
    const s = await bridge.getSession({ renew: true }).catch(() => null);
    if (!s) return null;
    return { accessToken: s.access_token };
  }
  if (!refreshToken) return null;
  try {
    const pair = await refreshTokens(refreshToken);
    adopt(pair);
    return { accessToken: pair.access_token, refreshToken: pair.refresh_token };
  } catch {
    return null;
  }
}

function adopt(pair: TokenPair | DesktopSession, persist = true): void {
  refreshToken = 'refresh_token' in pair ? pair.refresh_token : undefined;
  if (persist) keepRefresh(refreshToken);
  configureAuth({ accessToken: pair.access_token, refreshToken }, renew, () => {
    keepRefresh(undefined);
    useSession.setState({ status: 'signed-out', me: null, error: 'Your session ended. Sign in again.' });
  });
}

export const useSession = create<SessionState>((set, get) => ({
  status: 'loading',
  me: null,
  desktop: false,
  error: null,

  async init() {
    // The desktop window: the shell signs its owner in, no password page.
    const bridge = window.cynode;
    if (bridge?.getSession) {
      try {
        const s = await bridge.getSession();
        if (s) {
          set({ desktop: true });
          adopt(s, false);
          const me = await ok(gateway.GET('/v1/users/me'));
          set({ status: 'signed-in', me, error: null });
          return;
        }
      } catch (err) {
        set({ error: `The desktop session failed: ${errorText(err)}` });
      }
    }
    const stored = storedRefresh();
    if (stored) {
      try {
        adopt(await refreshTokens(stored));
        const me = await ok(gateway.GET('/v1/users/me'));
        set({ status: 'signed-in', me, error: null });
        return;
      } catch {
        keepRefresh(undefined);
      }
    }
    set({ status: 'signed-out' });
  },

  async signIn(handle, password) {
    const pair = await login(handle, password);
    adopt(pair);
    const me = await ok(gateway.GET('/v1/users/me'));
    set({ status: 'signed-in', me, error: null });
  },

  async signOut() {
    const token = refreshToken;
    await api.post('/v1/auth/logout', token ? { refresh_token: token } : {}).catch(() => {});
    keepRefresh(undefined);
    refreshToken = undefined;
    configureAuth(null, null, null);
    set({ status: 'signed-out', me: null, error: null });
  },

  isAdmin() {
    return get().me?.roles.includes('admin') ?? false;
  },
}));

/** Roles that may read nodes and settings (admins and operators). */
export function canOperate(me: Me | null): boolean {
  return !!me && (me.roles.includes('admin') || me.roles.includes('operator'));
}
