import createClient from 'openapi-fetch';
import type { Problem, TokenPair, paths } from './types';
import { readSse, type SseEvent } from './sse';

/** An answer that was not 2xx, with the gateway's problem document (or OpenAI error) when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problem?: Problem,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

interface Credentials {
  accessToken: string;
  refreshToken?: string;
}

type RefreshFn = () => Promise<Credentials | null>;

let creds: Credentials | null = null;
let refresher: RefreshFn | null = null;
let onSignedOut: (() => void) | null = null;
let refreshing: Promise<Credentials | null> | null = null;

/** The session store installs the current credentials and how to renew them. */
export function configureAuth(c: Credentials | null, refresh: RefreshFn | null, signedOut: (() => void) | null): void {
  creds = c;
  refresher = refresh;
  onSignedOut = signedOut;
}

export function setCredentials(c: Credentials | null): void {
  creds = c;
}

async function renew(): Promise<boolean> {
  if (!refresher) return false;
  refreshing ??= refresher().finally(() => (refreshing = null));
  const next = await refreshing;
  if (!next) return false;
  creds = next;
  return true;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Do not try to renew the session on 401 (sign-in itself). */
  noAuth?: boolean;
}

async function send(path: string, opts: RequestOptions): Promise<Response> {
  const doFetch = () => {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (creds && !opts.noAuth) headers.authorization = `Bearer ${creds.accessToken}`;
    return fetch(path, { method: opts.method ?? 'GET', headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: opts.signal });
  };
  let res = await doFetch();
  if (res.status === 401 && !opts.noAuth && creds) {
    if (await renew()) res = await doFetch();
    else onSignedOut?.();
  }
  if (!res.ok) throw await toError(res);
  return res;
}

async function toError(res: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    // not JSON: keep the status line
  }
  return errorOf(res, body);
}

/** The ApiError for a non-2xx answer whose body (problem document or OpenAI error) was read already. */
function errorOf(res: Response, body: unknown): ApiError {
  const retry = Number(res.headers.get('retry-after')) || undefined;
  let problem: Problem | undefined;
  let message = `${res.status} ${res.statusText}`;
  if (typeof body === 'object' && body !== null) {
    const b = body as Problem & { error?: { message?: string; code?: string } };
    if (b.error) {
      message = b.error.message ?? message;
      problem = { status: res.status, title: b.error.code, detail: b.error.message };
    } else {
      problem = b;
      message = b.detail ?? b.title ?? message;
    }
  }
  return new ApiError(res.status, message, problem, retry);
}

/**
 * The gateway's routes typed by schema.d.ts (paths, parameters, bodies and answers), with the
 * session's credentials and the same one renewal on 401 as `request`. Read answers with `ok()`.
 */
export const gateway = createClient<paths>({
  fetch: async (req) => {
    const again = req.clone();
    const authorized = (r: Request) => {
      if (creds) r.headers.set('authorization', `Bearer ${creds.accessToken}`);
      return fetch(r);
    };
    let res = await authorized(req);
    if (res.status === 401 && creds) {
      if (await renew()) res = await authorized(again);
      else onSignedOut?.();
    }
    return res;
  },
});

/** The answer of a typed call, or its ApiError (thrown) when it was not 2xx. */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw errorOf(response, error);
  return data as T;
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await send(path, opts);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

export const api = {
  get: <T>(path: string, signal?: AbortSignal) => request<T>(path, { signal }),
  post: <T>(path: string, body?: unknown, headers?: Record<string, string>) => request<T>(path, { method: 'POST', body: body ?? {}, headers }),
  put: <T>(path: string, body: unknown) => request<T>(path, { method: 'PUT', body }),
  patch: <T>(path: string, body: unknown) => request<T>(path, { method: 'PATCH', body }),
  del: <T = void>(path: string) => request<T>(path, { method: 'DELETE' }),
};

/**
 * A streaming request (server-sent events): resolves when the stream ends, rejects on an HTTP
 * error before it started; aborting `signal` closes it (and, on the gateway, stops the work).
 */
export async function stream(path: string, opts: RequestOptions & { onEvent: (e: SseEvent) => void }): Promise<void> {
  const res = await send(path, { ...opts, headers: { ...opts.headers, accept: 'text/event-stream' } });
  if (!res.body) return;
  await readSse(res.body, opts.onEvent);
}

/** Sign-in: the pair the session store keeps. */
export function login(handle: string, password: string): Promise<TokenPair> {
  return request<TokenPair>('/v1/auth/login', { method: 'POST', body: { handle, password }, noAuth: true });
}

export function refreshTokens(refreshToken: string): Promise<TokenPair> {
  return request<TokenPair>('/v1/auth/refresh', { method: 'POST', body: { refresh_token: refreshToken }, noAuth: true });
}

export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;

/** A readable sentence for any error a page shows. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 429 && err.retryAfter) return `${err.message} (retry in ${err.retryAfter} s)`;
    return err.message;
  }
  if (err instanceof DOMException && err.name === 'AbortError') return 'Stopped';
  if (err instanceof TypeError) return 'Cannot reach the CyNode server. Is it running?';
  return err instanceof Error ? err.message : String(err);
}
