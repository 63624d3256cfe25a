import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import swagger from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { HttpProblem, badRequest, tooManyRequests, forbidden } from './problem';
import { answerClientError, clip, sendError } from './errors';
import { buildValidator, checkInputRules } from './input-rules';
import type { Principal, RequestContext } from './principal';
import { hostAllowed, hostName, plainAddress } from './addresses';
import { RequestSlots, type Refusal, type Slot } from './slots';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `none`: no credential needed (health, login). Anything else needs a valid credential. */
    auth?: 'none' | 'user';
    /** Health checks: answered while the server starts, and never counted against the request caps. */
    health?: boolean;
    /** The OpenAI-compatible routes answer errors in OpenAI's shape, never problem details. */
    errorFormat?: 'problem' | 'openai';
    /**
     * The status for a Host this server does not answer to: 421 by default; 403 where a protocol
     * says a rebinding attempt is forbidden (the MCP endpoint, as the MCP SDK's own check answers).
     */
    unknownHostStatus?: 403 | 421;
  }
  interface FastifyRequest {
    principal: Principal | null;
    /** The request's place in the request caps; given back when its response closes, or when it turns into a live stream. */
    slot: Slot | null;
  }
}

export type HttpServer = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

export interface HttpServerOptions {
  name: string;
  logLevel: string;
  maxBodyBytes: number;
  maxConcurrentRequests: number;
  /** Longest a client may take to send a whole request, headers and body (then 408). */
  requestTimeoutSeconds: number;
  /** Browser origins allowed besides the request's own (Origin equal to http(s)://Host); a function when they change while running. */
  allowedOrigins: readonly string[] | (() => readonly string[]);
  /** Host names answered besides loopback and the address a request arrived on; `any` where no browser page could use the server. */
  allowedHosts: readonly string[] | 'any';
  /** False until the process has finished starting: until then everything but health answers 503. Absent: started. */
  started?(): boolean;
  /**
   * Checks the request's credential before the route runs, and records who is calling (on the
   * request); throws 401 when it is absent or not valid.
   */
  authenticate(request: FastifyRequest): Promise<void>;
  /** Serves GET /v1/openapi.json describing the server's routes. */
  openapi?: { title: string; version: string; description: string };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * How often Node looks for requests past their time limit (its default, 30 s, let a slow client
 * hold a request for up to twice the limit).
 */
export const CONNECTIONS_CHECK_MS = 1000;
const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * A Fastify instance with the gateway's cross-cutting rules: request ids, problem details for
 * every error, schema validation that rejects unknown fields, body and concurrency caps, an
 * origin allowlist for browsers, security headers, and authentication on every route that does
 * not opt out.
 */
export async function createHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const requestTimeout = opts.requestTimeoutSeconds * 1000;
  const app = Fastify({
    logger: {
      name: opts.name,
      level: opts.logLevel,
      // Never log credentials, whatever a later log call passes in.
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.refresh_token', '*.access_token', '*.key'], censor: '[redacted]' },
      // A query string is caller text (a model name, a search) that may hold a secret: the log
      // names the parameters, never their values.
      serializers: { req: (req: { method: string; url: string; ip?: string }) => ({ method: req.method, url: withoutQueryValues(req.url), remoteAddress: req.ip }) },
    },
    bodyLimit: opts.maxBodyBytes,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // A request, headers and body, arrives within this time or is answered 408 and closed:
    // a client that sends a few bytes now and then cannot keep a request open.
    requestTimeout,
    http: { connectionsCheckingInterval: CONNECTIONS_CHECK_MS, headersTimeout: requestTimeout, requestTimeout },
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
  app.decorateRequest('slot', null);

  // Native endpoints speak JSON only; a text/plain body is an unsupported media type (415),
  // not a string to fail schema validation with.
  app.removeContentTypeParser('text/plain');

  // First, so that every route registered after it (the OpenAPI document's too) answers 405 to other methods.
  const routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = routePattern(route.url ?? route.path);
    let entry = routes.find((r) => r.pattern.source === pattern.source);
    if (!entry) routes.push((entry = { pattern, methods: new Set() }));
    for (const m of [route.method].flat()) entry.methods.add(String(m).toUpperCase());
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
    // Read when asked, so it lists every route registered by then; behind the server's own credential.
    app.get(
      '/v1/openapi.json',
      { schema: { tags: ['meta'], summary: 'This API as an OpenAPI 3.1 document', response: { 200: Type.Object({}, { additionalProperties: true }) } } },
      async () => app.swagger(),
    );
  }

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });

  // A client address may hold an eighth of the pool of requests that need no credential.
  const slots = new RequestSlots({ size: opts.maxConcurrentRequests, perAddress: Math.ceil(opts.maxConcurrentRequests / 8) });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    reply.headers(SECURITY_HEADERS);

    if (closing) throw new HttpProblem(503, 'The server is shutting down; retry shortly', {}, { 'retry-after': '1', connection: 'close' });

    const config = request.routeOptions.config;
    const host = request.headers.host;
    if (opts.allowedHosts !== 'any' && !hostAllowed(host, request.socket.localAddress, opts.allowedHosts)) {
      throw new HttpProblem(config.unknownHostStatus ?? 421, `This server does not answer to the name "${clip(host ? hostName(host) : '')}"; use its address, or add the name to CYNODE_ALLOWED_HOSTS`);
    }

    const origin = request.headers.origin;
    if (origin !== undefined && !originAllowed(origin, request, typeof opts.allowedOrigins === 'function' ? opts.allowedOrigins() : opts.allowedOrigins)) {
      throw forbidden('Origin not allowed');
    }

    if (config.health) return;
    if (opts.started && !opts.started()) throw new HttpProblem(503, 'The server is starting; retry shortly', {}, { 'retry-after': '1' });

    // 'close' fires once per response, whether it was sent or the client went away mid-request;
    // a slot taken after that is given back at once.
    let closed = false;
    reply.raw.once('close', () => {
      closed = true;
      request.slot?.release();
    });
    const hold = (slot: Slot | Refusal) => {
      if (slot === 'pool_full') throw tooManyRequests('The server is busy; retry shortly', 1);
      if (slot === 'address_full') throw tooManyRequests('Too many requests from this address are in progress; retry shortly', 1);
      request.slot?.release();
      request.slot = slot;
      if (closed) slot.release();
    };

    // Unknown routes answer 404 whoever asks.
    if (!request.routeOptions.url || config.auth === 'none') {
      hold(slots.openSlot(plainAddress(request.ip)));
      return;
    }
    hold(slots.checkingSlot());
    await opts.authenticate(request);
    hold(slots.signedInSlot());
  });

  // Checks the schemas cannot express, before they run.
  app.addHook('preValidation', async (request) => checkInputRules(request));

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

/** helmet's headers: the console (served at /) is a same-origin single-page app. */
const SECURITY_HEADERS = securityHeaders({
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

/**
 * The headers helmet sets, computed once. They are the same for every answer (no CSP nonces),
 * and @fastify/helmet rebuilt helmet's middleware, CSP parsing included, on every request: a
 * few percent of a chat completion's CPU.
 */
function securityHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: unknown) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: () => {},
  };
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
  });
  return headers;
}

/** A route URL such as `/v1/users/:id` as a matcher for concrete paths. */
function routePattern(url: string): RegExp {
  const source = url
    .split('/')
    // `::` is Fastify's escape for a literal colon (`/v1/worker/jobs::run`).
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/::/g, ':').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}

function originAllowed(origin: string, request: FastifyRequest, allowed: readonly string[]): boolean {
  if (allowed.includes(origin)) return true;
  const host = request.headers.host;
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
}

/** `/v1/x?model=secret&limit=5` as `/v1/x?model=…&limit=…`. */
export function withoutQueryValues(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const names = url
    .slice(q + 1)
    .split('&')
    .filter(Boolean)
    .map((pair) => `${clip(pair.split('=')[0] ?? '', 40)}=…`);
  return `${url.slice(0, q)}?${names.join('&')}`;
}

export function requestContext(request: FastifyRequest): RequestContext {
  return { requestId: request.id, ip: request.ip, userAgent: request.headers['user-agent'] };
}

