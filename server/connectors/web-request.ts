import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { pinnedLookup, type EgressGuard } from './egress';
import { ConnectorError, type CredentialSecret } from './types/contract';

/**
 * The one way web-API connectors reach their peer: through the egress guard, to the checked
 * address, without following redirects (a redirect could point anywhere), reading at most a
 * fixed number of bytes, and turning every failure into a classed ConnectorError.
 */

export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

export interface WebRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  signal: AbortSignal;
  egress: EgressGuard;
  timeoutMs: number;
  maxResponseBytes?: number;
  /** Who the peer is, in failure messages ("Slack", "The web API"). */
  service?: string;
}

export interface WebResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The peer sent more than maxResponseBytes; `body` holds the first part only. */
  truncated: boolean;
}

export async function sendWebRequest(req: WebRequest): Promise<WebResponse> {
  const service = req.service ?? 'The web API';
  if (req.url.protocol !== 'http:' && req.url.protocol !== 'https:') {
    throw new ConnectorError('validation_error', 'Only http and https addresses can be reached');
  }
  const target = await req.egress.resolve(req.url.hostname);
  const limit = req.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const signal = AbortSignal.any([req.signal, AbortSignal.timeout(req.timeoutMs)]);
  if (signal.aborted) throw timedOut(service);
  const client = req.url.protocol === 'https:' ? https : http;
  return new Promise<WebResponse>((resolve, reject) => {
    let settled = false;
    const fail = (e: ConnectorError): void => {
      if (settled) return;
      settled = true;
      outgoing.destroy();
      reject(e);
    };
    const outgoing = client.request(req.url, {
      method: req.method,
      // The peer's answer must be readable as sent: no compressed encodings.
      headers: {
        'accept-encoding': 'identity',
        ...req.headers,
        ...(req.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(req.body)) }),
      },
      lookup: pinnedLookup(target),
      // A fresh connection each time: a pooled one could outlive a change of the allow list.
      agent: false,
    });
    const onAbort = (): void => fail(timedOut(service));
    signal.addEventListener('abort', onAbort, { once: true });
    outgoing.on('close', () => signal.removeEventListener('abort', onAbort));
    outgoing.on('error', (e) => fail(networkFailure(e, service)));
    outgoing.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = (truncated: boolean): void => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), truncated });
        if (truncated) outgoing.destroy();
      };
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        const room = limit - size;
        if (chunk.length > room) {
          chunks.push(chunk.subarray(0, room));
          size = limit;
          finish(true);
          return;
        }
        chunks.push(chunk);
        size += chunk.length;
      });
      res.on('end', () => finish(false));
      res.on('error', (e) => fail(networkFailure(e, service)));
    });
    outgoing.end(req.body);
  });
}

function timedOut(service: string): ConnectorError {
  return new ConnectorError('transient', `${service} did not answer in time`);
}

const TRANSIENT_NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);

/** A network error in plain words; the raw error (which may name internal details) stays out. */
export function networkFailure(e: Error, service: string): ConnectorError {
  const code = (e as { code?: string }).code ?? '';
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code.startsWith('ERR_SSL')) {
    return new ConnectorError('permanent', `${service}'s TLS certificate could not be verified`);
  }
  if (code.startsWith('ERR_INVALID_') || code === 'ERR_HTTP_INVALID_HEADER_VALUE' || code === 'ERR_UNESCAPED_CHARACTERS') {
    return new ConnectorError('validation_error', 'The request has a header or path that cannot be sent');
  }
  if (TRANSIENT_NETWORK.has(code)) return new ConnectorError('transient', `${service} could not be reached`);
  return new ConnectorError('transient', `${service} could not be reached (the connection failed)`);
}

/** The peer's Retry-After in milliseconds, when it gave a usable one. */
export function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * How a peer's HTTP status fails an operation, or null for success. Rate limits, timeouts and
 * server errors are transient (worth retrying later); a refused credential is permanent and
 * says so; other client errors mean the request itself was wrong.
 */
export function failureForStatus(status: number, headers: IncomingHttpHeaders, service = 'The web API'): ConnectorError | null {
  if (status >= 200 && status < 400) return null;
  const details = { providerStatus: status, retryAfterMs: retryAfterMs(headers['retry-after']) };
  const rateLimited = status === 429 || (status === 403 && (details.retryAfterMs !== undefined || headers['x-ratelimit-remaining'] === '0'));
  if (rateLimited) return new ConnectorError('transient', `${service} is limiting the request rate (HTTP ${status})`, details);
  if (status === 401 || status === 403) {
    return new ConnectorError('permanent', `${service} refused the credential (HTTP ${status}); check or rotate it`, details);
  }
  if (status === 408 || (status >= 500 && status !== 501 && status !== 505)) {
    return new ConnectorError('transient', `${service} is unavailable right now (HTTP ${status})`, details);
  }
  if ([400, 413, 414, 422, 431].includes(status)) {
    return new ConnectorError('validation_error', `${service} rejected the request as invalid (HTTP ${status})`, details);
  }
  return new ConnectorError('permanent', `${service} answered HTTP ${status}`, details);
}

/** Headers that frame the request itself; no credential may take their place. */
const TRANSPORT_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'expect', 'keep-alive']);

/**
 * The headers that carry a credential for the given scheme. `bearerScheme` lets a service that
 * names its token differently (Discord's `Bot`) use a plain bearer_token credential.
 */
export function credentialHeaders(
  credential: CredentialSecret | null,
  options: { bearerScheme?: string; apiKeyHeader?: string } = {},
): Record<string, string> {
  if (!credential) return {};
  switch (credential.type) {
    case 'bearer_token':
      return { authorization: `${options.bearerScheme ?? 'Bearer'} ${credential.token}` };
    case 'basic':
      return { authorization: `Basic ${Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64')}` };
    case 'custom_header':
      if (TRANSPORT_HEADERS.has(credential.name.toLowerCase())) {
        throw new ConnectorError('validation_error', `A credential cannot be sent as the ${credential.name} header`);
      }
      return { [credential.name.toLowerCase()]: credential.value };
    case 'api_key':
      return { [(options.apiKeyHeader ?? 'x-api-key').toLowerCase()]: credential.key };
    case 'password':
      throw new ConnectorError('validation_error', 'A password credential cannot be sent to a web API; use basic instead');
  }
}

/**
 * `path` joined below `base`: the result stays on the base URL's origin and under its path.
 * Dot segments, encoded slashes or dots and backslashes are refused outright rather than
 * normalised, since a peer may decode them differently than we do.
 */
export function urlWithin(base: URL, path: string, query?: Record<string, unknown>): URL {
  const refuse = (): never => {
    throw new ConnectorError('validation_error', 'The path must stay under the connector\'s base URL');
  };
  // Control characters (CR, LF and the like) never belong in a request path.
  // eslint-disable-next-line no-control-regex
  if (/[\\?#\u0000-\u001f\u007f]/.test(path) || /%(2e|2f|5c|00)/i.test(path) || path.startsWith('//')) refuse();
  const segments = path.replace(/^\//, '').split('/');
  if (segments.some((s) => s === '.' || s === '..')) refuse();
  const prefix = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
  // The URL parser percent-encodes what must be encoded and leaves existing escapes alone.
  const url = new URL(`${base.origin}${prefix}${segments.join('/')}`);
  if (url.origin !== base.origin || !url.pathname.startsWith(prefix)) refuse();
  for (const [name, value] of Object.entries(query ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v === undefined || v === null) continue;
      url.searchParams.append(name, String(v));
    }
  }
  return url;
}

/** A base URL from config: http(s), no user info, no query or fragment. */
export function baseUrlOf(value: unknown): URL {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new ConnectorError('validation_error', 'base_url is not a valid URL');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) {
    throw new ConnectorError('validation_error', 'base_url must be an http or https URL without credentials, query or fragment');
  }
  return url;
}

export function isJson(headers: IncomingHttpHeaders): boolean {
  return /^application\/([\w.+-]+\+)?json\b/i.test(headers['content-type'] ?? '');
}
