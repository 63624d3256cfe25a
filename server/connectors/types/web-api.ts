import { Type } from '@sinclair/typebox';
import { baseUrlOf, credentialHeaders, failureForStatus, isJson, sendWebRequest, urlWithin } from '../web-request';
import { ConnectorError, type HealthContext, type InvokeContext } from './contract';

/**
 * What the messaging and forge types share: a JSON API below a base URL, with the credential in
 * the header shape the service expects. Each type supplies its paths and answer mapping.
 */

export interface JsonApiCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, unknown>;
  body?: unknown;
  timeoutMs: number;
}

export interface JsonApi {
  /** Name used in failure messages. */
  service: string;
  defaultBaseUrl?: string;
  /** Scheme word in `Authorization` for a bearer_token credential. */
  bearerScheme?: string;
  /** Fixed headers the service asks for (API version, Accept, User-Agent). */
  headers?: Record<string, string>;
}

/** Config every web-API messaging type takes: where the service lives. */
export function baseUrlConfig(defaultBaseUrl: string | undefined) {
  return Type.Object(
    {
      base_url: defaultBaseUrl
        ? Type.Optional(Type.String({ pattern: '^https?://', maxLength: 2048, default: defaultBaseUrl }))
        : Type.String({ pattern: '^https?://', maxLength: 2048 }),
    },
    { additionalProperties: false },
  );
}

const MAX_ANSWER_BYTES = 1024 * 1024;

/** Calls the service and answers its parsed JSON, or throws a classed ConnectorError. */
export async function callJsonApi(api: JsonApi, ctx: HealthContext & Pick<InvokeContext, 'providerStatus'>, call: JsonApiCall): Promise<unknown> {
  const base = baseUrlOf(ctx.config.base_url ?? api.defaultBaseUrl);
  const headers: Record<string, string> = {
    accept: 'application/json',
    'user-agent': 'CyNode',
    ...api.headers,
    ...credentialHeaders(ctx.credential, { bearerScheme: api.bearerScheme }),
  };
  let body: string | undefined;
  if (call.body !== undefined) {
    body = JSON.stringify(call.body);
    headers['content-type'] = 'application/json; charset=utf-8';
  }
  const res = await sendWebRequest({
    url: urlWithin(base, call.path, call.query),
    method: call.method,
    headers,
    body,
    signal: ctx.signal,
    egress: ctx.egress,
    timeoutMs: call.timeoutMs,
    maxResponseBytes: MAX_ANSWER_BYTES,
    service: api.service,
  });
  ctx.providerStatus?.(res.status);
  const failure = failureForStatus(res.status, res.headers, api.service);
  if (failure) throw failure;
  if (res.status >= 300) throw new ConnectorError('permanent', `${api.service} answered with a redirect (HTTP ${res.status})`, { providerStatus: res.status });
  if (res.truncated) throw new ConnectorError('permanent', `${api.service}'s answer is larger than ${MAX_ANSWER_BYTES} bytes`, { providerStatus: res.status });
  if (res.status === 204 || res.body.length === 0) return null;
  if (!isJson(res.headers)) throw new ConnectorError('permanent', `${api.service} did not answer with JSON`, { providerStatus: res.status });
  try {
    return JSON.parse(res.body.toString('utf8')) as unknown;
  } catch {
    throw new ConnectorError('permanent', `${api.service} answered with malformed JSON`, { providerStatus: res.status });
  }
}

/** Path segments taken from parameters: ids and names only, so they cannot reshape the path. */
export function segment(value: unknown, what: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9._@-]{1,200}$/.test(value) || value === '.' || value === '..') {
    throw new ConnectorError('validation_error', `${what} must be an identifier (letters, digits, . _ @ -)`);
  }
  return value;
}

export function record(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

export function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
