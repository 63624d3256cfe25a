import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem, problemDocument } from './problem';

/*
 * How every error leaves the server: a problem document (RFC 9457) on native routes, OpenAI's
 * error shape on the OpenAI-compatible ones, never a stack trace, SQL or a secret.
 */

/** Reflected input is cut short: a problem names what was wrong, it does not echo kilobytes. */
export function clip(s: string, max = 120): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Node could not parse the request (garbage, headers too large, timeout): answer on the socket. */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, detail] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'The request was not received in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request headers are larger than the server accepts']
        : [400, 'The request is not valid HTTP'];
  const id = randomUUID();
  const body = JSON.stringify(problemDocument(status, detail, id));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${id}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Maps anything thrown to a 4xx/5xx answer without internals: no stack, no SQL, no secrets. */
export function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): void {
  let status = 500;
  let detail = 'An unexpected error occurred; the request id identifies it in the server log';
  let ext: Record<string, unknown> = {};
  let headers: Record<string, string> = {};

  const db = databaseRefusal(error);
  if (error instanceof HttpProblem) {
    status = error.status;
    detail = error.detail;
    ext = error.extensions;
    headers = error.headers;
  } else if (db) {
    [status, detail] = db;
    // A service should have caught this input before the database did.
    request.log.warn({ err: error }, 'database refused a request value');
  } else if (isFastifyError(error)) {
    if (error.validation) {
      status = 400;
      const where = error.validationContext ?? 'request';
      const first = error.validation[0];
      const path = first?.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
      const extra = first?.keyword === 'additionalProperties' ? ` (unknown field "${clip(String((first.params as { additionalProperty?: string }).additionalProperty))}")` : '';
      detail = `${where}${path ? '.' + path : ''} ${first?.message ?? 'is invalid'}${extra}`;
      ext = { errors: error.validation.map((v) => ({ location: where, path: v.instancePath, message: v.message })) };
    } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      status = error.statusCode;
      detail = publicMessage(error);
    }
  }

  if (status >= 500 && status !== 503) request.log.error({ err: error }, 'request failed');
  if (reply.sent || reply.raw.headersSent) return;

  // Set here too: errors raised before the onRequest hook (bad URLs) must carry them as well.
  reply.header('x-request-id', request.id);
  reply.header('x-content-type-options', 'nosniff');
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  if (request.routeOptions?.config?.errorFormat === 'openai') {
    // A problem may name its kind (`type`) and the field at fault (`param`), as OpenAI's errors do.
    const type = typeof ext.type === 'string' ? ext.type : 'cynodeai_error';
    const param = typeof ext.param === 'string' ? ext.param : null;
    reply.code(status).type('application/json').send({ error: { message: detail, type, param, code: openAiCode(status, ext) } });
    return;
  }
  reply.code(status).type('application/problem+json').send(problemDocument(status, detail, request.id, ext));
}

/**
 * PostgreSQL refusing a value (SQLSTATE class 22: bad text for a uuid, NUL, too long, out of
 * range; class 23: constraints) is the client's input, not a server fault. Services translate the
 * cases they expect; this is the safety net, with a generic detail that shows no SQL.
 */
function databaseRefusal(error: unknown): [number, string] | null {
  if (!(error instanceof Error) || !('severity' in error)) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return null;
  if (code === '23505') return [409, 'This conflicts with an existing resource'];
  if (code === '23503') return [409, 'This refers to a resource that does not exist, or one that is still in use'];
  if (code.startsWith('22') || code === '23502' || code === '23514') return [400, 'A value in the request is not valid for its field'];
  return null;
}

function isFastifyError(e: unknown): e is FastifyError {
  return e instanceof Error && ('statusCode' in e || 'validation' in e || 'code' in e);
}

/** Fastify's own 4xx messages are safe to show, but we phrase the common ones for people. */
function publicMessage(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'Request body is larger than the server accepts';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'Request body is not valid JSON';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'Request body is empty but Content-Type is application/json';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported Content-Type; send application/json';
    default:
      return error.message.slice(0, 300);
  }
}

function openAiCode(status: number, ext: Record<string, unknown>): string {
  if (typeof ext.code === 'string') return ext.code;
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'authentication_required';
    case 403:
      return 'permission_denied';
    case 404:
      return 'not_found';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limited';
    default:
      return 'cynodeai_internal_error';
  }
}
