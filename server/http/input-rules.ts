import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyRequest } from 'fastify';
import { badRequest } from './problem';
import { unstorable } from '../db/storable';
import { clip } from './errors';

/*
 * Input rules beyond what Fastify does by itself: on every route, nothing the database cannot
 * store gets in (NUL, unpaired surrogates, JSON nested too deep); on the native endpoints, JSON
 * bodies are not type-coerced and routes without a body or query schema take none.
 */

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type ValidatorRoute = { schema: unknown; method: string; url: string; httpPart?: string };
type BuildValidator = (externalSchemas: unknown, options: unknown) => (route: ValidatorRoute) => unknown;

// The same validator factory Fastify uses by default (a declared dependency at Fastify's version).
const ajvFactory = AjvCompiler() as unknown as BuildValidator;

/**
 * Query strings and path parameters only carry text, so their numbers and booleans are coerced
 * from strings; JSON bodies carry real types, and a wrong one must be refused, not guessed:
 * `{"name": 123}` or `{"handle": ["admin"]}` is a client bug to report.
 */
export const buildValidator: BuildValidator = (externalSchemas, options) => {
  const ajv = (options ?? {}) as { customOptions?: Record<string, unknown> };
  const lenient = ajvFactory(externalSchemas, ajv);
  const strict = ajvFactory(externalSchemas, { ...ajv, customOptions: { ...ajv.customOptions, coerceTypes: false } });
  return (route) => (route.httpPart === 'body' ? strict(route) : lenient(route));
};

/** Runs before schema validation on every route. */
export function checkInputRules(request: FastifyRequest): void {
  // Unknown routes answer 404 whatever they were sent.
  if (!request.routeOptions.url) return;
  // Refused here, where the request fails alone, rather than by the database (a 500, or a shared
  // write failing for others: server/db/storable.ts).
  const bad = unstorable(request.params, 'params') ?? unstorable(request.query, 'querystring') ?? unstorable(request.body, 'body');
  if (bad) throw badRequest(bad);
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
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasRequiredFields(schema: unknown): boolean {
  return isPlainObject(schema) && Array.isArray(schema.required) && schema.required.length > 0;
}
