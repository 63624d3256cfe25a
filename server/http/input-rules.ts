import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyRequest } from 'fastify';
import { badRequest } from './problem';
import { clip } from './errors';

/*
 * Input rules of the native endpoints beyond what Fastify does by itself: JSON bodies are not
 * type-coerced, routes without a body or query schema take none, and NUL never reaches the
 * database.
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

/** Runs before schema validation on every native route. */
export function checkInputRules(request: FastifyRequest): void {
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
