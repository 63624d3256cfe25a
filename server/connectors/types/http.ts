import { Type } from '@sinclair/typebox';
import type { IncomingHttpHeaders } from 'node:http';
import { baseUrlOf, credentialHeaders, DEFAULT_MAX_RESPONSE_BYTES, failureForStatus, isJson, sendWebRequest, urlWithin } from '../web-request';
import { checkAgainst, ConnectorError, NO_RETRY, probe, type ConnectorDriver, type OperationSpec } from './contract';

/**
 * A web API below a base URL. The credential's type picks how it is sent: bearer_token as
 * `Authorization: Bearer`, basic as `Authorization: Basic`, custom_header as the header it
 * names, api_key in the header the config names (X-API-Key by default).
 */

const MAX_RESPONSE_LIMIT = 8 * 1024 * 1024;

const HttpConfig = Type.Object(
  {
    base_url: Type.String({ pattern: '^https?://', maxLength: 2048, description: 'Requests go to paths below this URL' }),
    api_key_header: Type.Optional(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$", default: 'X-API-Key' })),
    max_response_bytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: MAX_RESPONSE_LIMIT, default: DEFAULT_MAX_RESPONSE_BYTES })),
  },
  { additionalProperties: false },
);

const HeaderMap = Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$" }), Type.String({ maxLength: 8192, pattern: '^[^\\r\\n]*$' }));
const QueryValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

const RequestParams = Type.Object(
  {
    method: Type.Union(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => Type.Literal(m))),
    path: Type.String({ maxLength: 2048, description: 'Relative to base_url; cannot leave it' }),
    query: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.Union([QueryValue, Type.Array(QueryValue, { maxItems: 100 })]))),
    headers: Type.Optional(HeaderMap),
    body: Type.Optional(Type.Unknown({ description: 'A string is sent as text, anything else as JSON' })),
  },
  { additionalProperties: false },
);

const RequestResult = Type.Object({
  status: Type.Integer(),
  headers: Type.Record(Type.String(), Type.String()),
  body: Type.Unknown(),
  encoding: Type.Union([Type.Literal('json'), Type.Literal('text'), Type.Literal('base64')]),
  truncated: Type.Boolean(),
});

const request: OperationSpec = {
  name: 'request',
  title: 'Send a request',
  description: 'Sends one HTTP request to a path below the base URL and answers the status, selected headers and body.',
  requestSchema: RequestParams,
  resultSchema: RequestResult,
  execution: 'sync',
  timeoutMs: 30_000,
  // The method may be POST: the operation as a whole is not safe to repeat.
  idempotent: false,
  retry: NO_RETRY,
};

/** Headers a request may not set: the transport and the credential own them. */
const RESERVED_HEADERS = new Set([
  'host', 'authorization', 'proxy-authorization', 'content-length', 'transfer-encoding', 'connection', 'upgrade',
  'te', 'trailer', 'keep-alive', 'expect', 'accept-encoding', 'proxy-connection',
]);

/** Answer headers worth showing; cookies and the like stay out of results. */
const RESULT_HEADERS = [
  'content-type', 'content-length', 'content-language', 'etag', 'last-modified', 'location', 'retry-after', 'link',
  'x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset',
];

function resultHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of RESULT_HEADERS) {
    const value = headers[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

const TEXTUAL = /^(text\/|application\/(xml|javascript|x-www-form-urlencoded)|[^;]*\+xml)/i;

function decodeBody(headers: IncomingHttpHeaders, body: Buffer, truncated: boolean): { body: unknown; encoding: 'json' | 'text' | 'base64' } {
  if (body.length === 0) return { body: null, encoding: 'json' };
  if (isJson(headers) && !truncated) {
    try {
      return { body: JSON.parse(body.toString('utf8')) as unknown, encoding: 'json' };
    } catch {
      return { body: body.toString('utf8'), encoding: 'text' };
    }
  }
  if (isJson(headers) || TEXTUAL.test(headers['content-type'] ?? 'text/plain')) return { body: body.toString('utf8'), encoding: 'text' };
  return { body: body.toString('base64'), encoding: 'base64' };
}

export const httpDriver: ConnectorDriver = {
  spec: {
    type: 'http',
    title: 'Web API',
    description: 'Any HTTP API below a base URL, with a bearer token, basic, custom header or API key credential.',
    configSchema: HttpConfig,
    credentialTypes: ['bearer_token', 'basic', 'custom_header', 'api_key'],
    credentialRequired: false,
    operations: [request],
  },

  async invoke(ctx) {
    if (ctx.operation.name !== 'request') throw new ConnectorError('validation_error', `Unknown operation ${ctx.operation.name}`);
    checkAgainst(RequestParams, ctx.params, 'The request');
    const params = ctx.params as { method: string; path: string; query?: Record<string, unknown>; headers?: Record<string, string>; body?: unknown };
    const base = baseUrlOf(ctx.config.base_url);
    const auth = credentialHeaders(ctx.credential, { apiKeyHeader: ctx.config.api_key_header as string | undefined });
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(params.headers ?? {})) {
      const lower = name.toLowerCase();
      if (RESERVED_HEADERS.has(lower) || lower in auth) {
        throw new ConnectorError('validation_error', `The header ${name} is set by the connector and cannot be given`);
      }
      headers[lower] = value;
    }
    let body: string | undefined;
    if (params.body !== undefined && params.body !== null) {
      if (params.method === 'GET' || params.method === 'HEAD') throw new ConnectorError('validation_error', `A ${params.method} request has no body`);
      body = typeof params.body === 'string' ? params.body : JSON.stringify(params.body);
      headers['content-type'] ??= typeof params.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8';
    }
    const res = await sendWebRequest({
      url: urlWithin(base, params.path, params.query),
      method: params.method,
      headers: { 'user-agent': 'CyNode', ...headers, ...auth },
      body,
      signal: ctx.signal,
      egress: ctx.egress,
      timeoutMs: ctx.operation.timeoutMs,
      maxResponseBytes: (ctx.config.max_response_bytes as number | undefined) ?? DEFAULT_MAX_RESPONSE_BYTES,
    });
    ctx.providerStatus?.(res.status);
    const failure = failureForStatus(res.status, res.headers);
    if (failure) throw failure;
    return { status: res.status, headers: resultHeaders(res.headers), ...decodeBody(res.headers, res.body, res.truncated), truncated: res.truncated };
  },

  health(ctx) {
    return probe(async () => {
      // Any answer but a refused credential or a server error shows the API is there for us.
      const res = await sendWebRequest({
        url: baseUrlOf(ctx.config.base_url),
        method: 'HEAD',
        headers: { 'user-agent': 'CyNode', ...credentialHeaders(ctx.credential, { apiKeyHeader: ctx.config.api_key_header as string | undefined }) },
        signal: ctx.signal,
        egress: ctx.egress,
        timeoutMs: 10_000,
        maxResponseBytes: 0,
      });
      const failure = failureForStatus(res.status, res.headers);
      if (failure && (failure.failure === 'transient' || res.status === 401 || res.status === 403)) throw failure;
    });
  },
};
