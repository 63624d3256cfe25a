import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { HttpProblem, badRequest, problemDocument, tooManyRequests, forbidden, unauthorized } from './problem';
import type { Principal, RequestContext } from './principal';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `none`: no credential needed (health, login). Anything else needs a valid credential. */
    auth?: 'none' | 'user';
    /** The OpenAI-compatible routes answer errors in OpenAI's shape, never problem details. */
    errorFormat?: 'problem' | 'openai';
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export type HttpServer = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

export interface HttpServerOptions {
  name: string;
  logLevel: string;
  maxBodyBytes: number;
  maxConcurrentRequests: number;
  allowedOrigins: readonly string[];
  /** Resolves the bearer credential; null when absent or not valid. */
  authenticate(request: FastifyRequest): Promise<Principal | null>;
  openapi?: { title: string; version: string; description: string };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

type ValidatorRoute = { schema: unknown; method: string; url: string; httpPart?: string };
type BuildValidator = (externalSchemas: unknown, options: unknown) => (route: ValidatorRoute) => unknown;

// Fastify's own validator factory, loaded from where Fastify resolves it, so it is the very
// version Fastify ships with (it is Fastify's dependency, not ours).
const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'));
const { AjvCompiler } = fastifyRequire('@fastify/ajv-compiler') as { AjvCompiler: () => BuildValidator };
const ajvFactory = AjvCompiler();

/**
 * Query strings and path parameters only carry text, so their numbers and booleans are coerced
 * from strings; JSON bodies carry real types, and a wrong one must be refused, not guessed:
 * `{"name": 123}` or `{"handle": ["admin"]}` is a client bug to report.
 */
const buildValidator: BuildValidator = (externalSchemas, options) => {
  const ajv = (options ?? {}) as { customOptions?: Record<string, unknown> };
  const lenient = ajvFactory(externalSchemas, ajv);
  const strict = ajvFactory(externalSchemas, { ...ajv, customOptions: { ...ajv.customOptions, coerceTypes: false } });
  return (route) => (route.httpPart === 'body' ? strict(route) : lenient(route));
};

/**
 * A Fastify instance with the gateway's cross-cutting rules: request ids, problem details for
 * every error, schema validation that rejects unknown fields, body and concurrency caps, an
 * origin allowlist for browsers, security headers, and authentication on every route that does
 * not opt out.
 */
export async function createHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const app = Fastify({
    logger: {
      name: opts.name,
      level: opts.logLevel,
      // Never log credentials, whatever a later log call passes in.
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.refresh_token', '*.access_token', '*.key'], censor: '[redacted]' },
    },
    bodyLimit: opts.maxBodyBytes,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    requestTimeout: 30_000,
    // Fastify's own 503 while closing is not a problem document; the onRequest hook answers instead.
    return503OnClosing: false,
    ajv: {
      customOptions: {
        // Unknown fields are an error on native endpoints (schemas say additionalProperties:false),
        // never silently dropped.
        removeAdditional: false,
        coerceTypes: 'array',
        useDefaults: true,
        allErrors: false,
      },
    },
    schemaController: { compilersFactory: { buildValidator: buildValidator as never } },
    // Errors Fastify meets before a route runs (bad percent-encoding, an over-long path
    // parameter) would otherwise get Fastify's own JSON shape.
    frameworkErrors: (error, request, reply) => {
      const code = (error as FastifyError).code;
      const problem =
        code === 'FST_ERR_BAD_URL'
          ? badRequest('The request path is not valid percent-encoding')
          : code === 'FST_ERR_MAX_PARAM_LENGTH'
            ? badRequest('A path parameter is longer than any valid value')
            : error;
      sendError(request, reply, problem);
    },
    // Requests Node cannot even parse never reach Fastify; they still get a problem document.
    clientErrorHandler: (error, socket) => answerClientError(error as Error & { code?: string }, socket),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('principal', null);

  // Native endpoints speak JSON only; a text/plain body is an unsupported media type (415),
  // not a string to fail schema validation with.
  app.removeContentTypeParser('text/plain');

  await app.register(helmet, {
    // The console (served at /) is a same-origin single-page app.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        fontSrc: ["'self'", 'data:'],
        // Plain HTTP on the LAN is the normal case; upgrading requests would break the console.
        upgradeInsecureRequests: null,
      },
    },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    // The same rule as frame-ancestors 'none', for browsers that only know the older header.
    xFrameOptions: { action: 'deny' },
    hsts: false, // plain HTTP on loopback and LAN; HSTS would only mislead
  });

  if (opts.openapi) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: opts.openapi,
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearer: [] }],
      },
    });
  }

  const routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = routePattern(route.url ?? route.path);
    let entry = routes.find((r) => r.pattern.source === pattern.source);
    if (!entry) routes.push((entry = { pattern, methods: new Set() }));
    for (const m of [route.method].flat()) entry.methods.add(String(m).toUpperCase());
  });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });

  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);

    if (closing) throw new HttpProblem(503, 'The server is shutting down; retry shortly', {}, { 'retry-after': '1', connection: 'close' });

    const origin = request.headers.origin;
    if (origin !== undefined && !originAllowed(origin, request, opts.allowedOrigins)) {
      throw forbidden('Origin not allowed');
    }

    if (inFlight >= opts.maxConcurrentRequests) {
      throw tooManyRequests('The server is busy; retry shortly', 1);
    }
    inFlight++;
    // 'close' fires once per response, whether it was sent or the client went away mid-request.
    reply.raw.once('close', () => inFlight--);

    // Unknown routes answer 404 whoever asks.
    if (!request.routeOptions.url) return;
    if (request.routeOptions.config.auth === 'none') return;
    request.principal = await opts.authenticate(request);
    if (!request.principal) throw unauthorized();
  });

  // Checks the schemas cannot express, before they run.
  app.addHook('preValidation', async (request) => {
    // Unknown routes answer 404 whatever they were sent.
    if (!request.routeOptions.url) return;
    // The OpenAI-compatible routes must ignore what they do not know; they check their own input.
    if (request.routeOptions.config?.errorFormat === 'openai') return;
    const schema = request.routeOptions.schema as { body?: unknown; querystring?: unknown } | undefined;

    if (schema?.querystring === undefined) {
      const unknown = Object.keys(request.query ?? {})[0];
      if (unknown !== undefined) throw badRequest(`Unknown query parameter "${clip(unknown)}": this endpoint takes none`);
    }

    if (schema?.body === undefined) {
      const body: unknown = request.body;
      if (body !== undefined && !(isPlainObject(body) && Object.keys(body).length === 0)) {
        throw badRequest('This endpoint takes no request body');
      }
    } else if (request.body === undefined && BODY_METHODS.has(request.method)) {
      // No body at all: fine where every field is optional, otherwise say what is missing
      // rather than "body must be object".
      if (hasRequiredFields(schema.body)) throw badRequest('A JSON request body is required (Content-Type: application/json)');
      request.body = {};
    }

    // PostgreSQL text cannot hold NUL; refusing it here keeps it from surfacing as a 500.
    const nul = findNul(request.params, 'params') ?? findNul(request.query, 'querystring') ?? findNul(request.body, 'body');
    if (nul) throw badRequest(`${nul} must not contain NUL (\\u0000) characters`);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => [...r.methods]));
    if (allowed.size > 0) {
      const allow = ROUTE_METHODS.filter((m) => allowed.has(m)).join(', ');
      sendError(request, reply, new HttpProblem(405, `${clip(request.method)} is not supported here; use ${allow}`, {}, { allow }));
      return;
    }
    sendError(request, reply, new HttpProblem(404, `No route for ${clip(request.method)} ${clip(path)}`));
  });

  app.setErrorHandler((error, request, reply) => {
    sendError(request, reply, error);
  });

  return app as unknown as HttpServer;
}

/** Reflected input is cut short: a problem names what was wrong, it does not echo kilobytes. */
function clip(s: string, max = 120): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasRequiredFields(schema: unknown): boolean {
  return isPlainObject(schema) && Array.isArray(schema.required) && schema.required.length > 0;
}

function findNul(value: unknown, where: string, depth = 0): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? where : undefined;
  if (depth > 32 || typeof value !== 'object' || value === null) return undefined;
  for (const [k, v] of Object.entries(value)) {
    if (k.includes('\u0000')) return where;
    const found = findNul(v, Array.isArray(value) ? `${where}[${k}]` : `${where}.${clip(k, 40)}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** A route URL such as `/v1/users/:id` as a matcher for concrete paths. */
function routePattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}

/** Node could not parse the request (garbage, headers too large, timeout): answer on the socket. */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
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

function originAllowed(origin: string, request: FastifyRequest, allowed: readonly string[]): boolean {
  if (allowed.includes(origin)) return true;
  const host = request.headers.host;
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
}

export function requestContext(request: FastifyRequest): RequestContext {
  return { requestId: request.id, ip: request.ip, userAgent: request.headers['user-agent'] };
}

/** Maps anything thrown to a 4xx/5xx answer without internals: no stack, no SQL, no secrets. */
function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): void {
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
    reply.code(status).type('application/json').send({ error: { message: detail, type: 'cynodeai_error', param: null, code: openAiCode(status, ext) } });
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
