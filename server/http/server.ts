import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { HttpProblem, problemDocument, tooManyRequests, forbidden, unauthorized } from './problem';
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
    return503OnClosing: true,
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
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('principal', null);

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

  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);

    const origin = request.headers.origin;
    if (origin !== undefined && !originAllowed(origin, request, opts.allowedOrigins)) {
      throw forbidden('Origin not allowed');
    }

    if (inFlight >= opts.maxConcurrentRequests) {
      throw tooManyRequests('The server is busy; retry shortly', 1);
    }
    inFlight++;
    reply.raw.once('close', () => inFlight--);

    // Unknown routes answer 404 whoever asks.
    if (!request.routeOptions.url) return;
    if (request.routeOptions.config.auth === 'none') return;
    request.principal = await opts.authenticate(request);
    if (!request.principal) throw unauthorized();
  });

  app.setNotFoundHandler((request, reply) => {
    sendError(request, reply, new HttpProblem(404, `No route for ${request.method} ${request.url.split('?')[0]}`));
  });

  app.setErrorHandler((error, request, reply) => {
    sendError(request, reply, error);
  });

  return app as unknown as HttpServer;
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

  if (error instanceof HttpProblem) {
    status = error.status;
    detail = error.detail;
    ext = error.extensions;
    headers = error.headers;
  } else if (isFastifyError(error)) {
    if (error.validation) {
      status = 400;
      const where = error.validationContext ?? 'request';
      const first = error.validation[0];
      const path = first?.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
      const extra = first?.keyword === 'additionalProperties' ? ` (unknown field "${String((first.params as { additionalProperty?: string }).additionalProperty)}")` : '';
      detail = `${where}${path ? '.' + path : ''} ${first?.message ?? 'is invalid'}${extra}`;
      ext = { errors: error.validation.map((v) => ({ location: where, path: v.instancePath, message: v.message })) };
    } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      status = error.statusCode;
      detail = publicMessage(error);
    }
  }

  if (status >= 500) request.log.error({ err: error }, 'request failed');
  if (reply.sent || reply.raw.headersSent) return;

  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  if (request.routeOptions.config?.errorFormat === 'openai') {
    reply.code(status).type('application/json').send({ error: { message: detail, type: 'cynodeai_error', param: null, code: openAiCode(status, ext) } });
    return;
  }
  reply.code(status).type('application/problem+json').send(problemDocument(status, detail, request.id, ext));
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
