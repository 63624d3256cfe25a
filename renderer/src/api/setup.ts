import { request } from './client';

/** GET /v1/setup: whether the admin still has the password first run generated. */
export interface SetupState {
  first_run_password_pending: boolean;
}

export function getSetup(signal?: AbortSignal): Promise<SetupState> {
  return request<SetupState>('/v1/setup', { signal, noAuth: true });
}

/** Only the machine running CyNode may choose it (the gateway checks; this decides what to offer). */
export function setAdminPassword(password: string): Promise<void> {
  return request<void>('/v1/setup/admin-password', { method: 'POST', body: { password }, noAuth: true });
}

/** The page was opened at the machine running CyNode (localhost, 127.0.0.0/8 or ::1). */
export function onLoopbackOrigin(hostname: string = window.location.hostname): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h === '[::1]' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
