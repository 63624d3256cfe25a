import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/**
 * Every operation of the OpenAPI document, driven with input a careless or hostile client sends.
 * The list of routes comes from the running server, so routes added later are covered without
 * touching this file. Every answer must be a 4xx problem document (or, where the input is in
 * fact valid, the answer listed explicitly below), never a 5xx, never internals.
 */

/** Routes that need no credential; everything else must answer 401 without one. */
const PUBLIC = new Set(['GET /healthz', 'GET /readyz', 'POST /v1/auth/login', 'POST /v1/auth/refresh', 'POST /v1/auth/logout', 'GET /v1/setup', 'POST /v1/setup/admin-password']);

/** What the public routes answer to a request with no credential and no body. */
const PUBLIC_WITHOUT_INPUT: Record<string, Expected> = {
  'GET /healthz': { status: [200], text: 'ok' },
  'GET /readyz': { status: [503], text: 'no inference path' },
  'POST /v1/auth/login': { status: [400] },
  'POST /v1/auth/refresh': { status: [400] },
  // Every field is optional; with nothing to end, logging out still succeeds.
  'POST /v1/auth/logout': { status: [204] },
  // Whether first-run setup is pending: nothing else, to anyone.
  'GET /v1/setup': { status: [200] },
  // From loopback (this suite), a body is still required; the 403 for LAN clients is in first-run-setup.test.ts.
  'POST /v1/setup/admin-password': { status: [400] },
};

/**
 * The OpenAI-compatible routes answer errors in OpenAI's shape, never problem details, and must
 * ignore what they do not know, unknown query parameters included.
 */
const OPENAI = new Set(['GET /v1/models', 'POST /v1/chat/completions', 'POST /v1/chat/warm', 'POST /v1/embeddings']);

/**
 * Operations for which an empty JSON object is a complete, valid request (no path id, no
 * required field). Each is listed with what it answers, so a new one shows up as a failure
 * until someone decides what it should do.
 */
const VALID_EMPTY_OBJECT: Record<string, Expected> = {
  // Admin's own session is not named by the body; the bearer token is (it is re-created below).
  'POST /v1/auth/logout': { status: [204] },
  // Takes no input: every call replaces the node join key (the suite never registers nodes).
  'POST /v1/nodes/join/rotate': { status: [200] },
  // A new chat thread in the caller's default project, untitled.
  'POST /v1/chat/threads': { status: [201] },
  // Purges what expired now (nothing, with the default keep-forever policy) and says what it did.
  'POST /v1/retention/purge': { status: [200] },
  // A new session of the caller's, untitled and top-level.
  'POST /v1/sessions': { status: [201] },
};

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const INTERNALS = [/ {4}at /, /node_modules/, /\/work\//, /\bSELECT\b/, /\bINSERT INTO\b/, /\bUPDATE\b.*\bSET\b/, /violates/, /Error:/, /syntax error/i, /\bpg_/, /duplicate key/];

interface Expected {
  status: number[];
  /** Plain-text answer containing this; otherwise a problem document is expected. */
  text?: string;
}

interface Operation {
  method: string;
  /** OpenAPI template, e.g. /v1/users/{id}. */
  path: string;
  /** `named`: a name the client chooses (a preference key) whose declared pattern no uuid matches. */
  pathParams: Array<{ name: string; uuid: boolean; named: boolean }>;
  queryParams: string[];
  body: { schema: any; required: string[] } | undefined;
  /** The document says it needs no credential (`security: []`). */
  documentedPublic: boolean;
  key: string;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** node:http rather than fetch: fetch would normalise `..` and refuse some of these requests. */
function send(baseUrl: string, opts: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  const url = new URL(baseUrl);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method: opts.method, path: opts.path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Why an answer breaks the rules, or null when it keeps them. */
function violation(answer: Answer, expected: Expected, method: string, openai = false): string | null {
  const problems: string[] = [];
  if (!expected.status.includes(answer.status)) problems.push(`status ${answer.status}, expected ${expected.status.join(' or ')}`);
  const contentType = String(answer.headers['content-type'] ?? '');
  const requestId = answer.headers['x-request-id'];
  if (!requestId) problems.push('no x-request-id header');
  for (const pattern of INTERNALS) if (pattern.test(answer.text)) problems.push(`body shows internals (${pattern})`);

  if (expected.text !== undefined) {
    if (!contentType.startsWith('text/plain')) problems.push(`content-type "${contentType}", expected text/plain`);
    if (!answer.text.includes(expected.text)) problems.push(`body does not contain "${expected.text}"`);
  } else if (answer.status >= 400 && openai) {
    if (!contentType.startsWith('application/json')) problems.push(`content-type "${contentType}", expected application/json (OpenAI error shape)`);
    if (method !== 'HEAD') {
      let doc: any;
      try {
        doc = JSON.parse(answer.text);
      } catch {
        problems.push('body is not JSON');
      }
      const e = doc?.error;
      if (doc && (typeof e?.message !== 'string' || e.type !== 'cynodeai_error' || e.param !== null || typeof e.code !== 'string')) problems.push('not an OpenAI error {error:{message,type,param,code}}');
    }
  } else if (answer.status >= 400) {
    if (!contentType.startsWith('application/problem+json')) problems.push(`content-type "${contentType}", expected application/problem+json`);
    // HEAD answers carry the headers of a problem but no body.
    if (method !== 'HEAD') {
      let doc: any;
      try {
        doc = JSON.parse(answer.text);
      } catch {
        problems.push('body is not JSON');
      }
      if (doc) {
        for (const field of ['type', 'title', 'detail', 'instance']) if (typeof doc[field] !== 'string') problems.push(`problem has no string "${field}"`);
        if (doc.status !== answer.status) problems.push(`problem status ${doc.status} differs from HTTP ${answer.status}`);
        if (doc.instance !== requestId) problems.push(`problem instance ${doc.instance} is not the x-request-id ${String(requestId)}`);
      }
    }
  }
  return problems.length ? `${problems.join('; ')} — ${answer.text.slice(0, 200)}` : null;
}

function operationsOf(doc: any): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [m, op] of Object.entries<any>(item)) {
      const method = m.toUpperCase();
      if (!METHODS.includes(method) && method !== 'HEAD') continue;
      const params: any[] = [...(item.parameters ?? []), ...(op.parameters ?? [])];
      const bodySchema = op.requestBody?.content?.['application/json']?.schema;
      ops.push({
        method,
        path,
        pathParams: params.filter((p) => p.in === 'path').map((p) => ({ name: p.name, uuid: p.schema?.format === 'uuid', named: typeof p.schema?.pattern === 'string' && !new RegExp(p.schema.pattern).test(randomUUID()) })),
        queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
        body: bodySchema ? { schema: bodySchema, required: bodySchema.required ?? [] } : undefined,
        documentedPublic: Array.isArray(op.security) && op.security.length === 0,
        key: `${method} ${path}`,
      });
    }
  }
  return ops;
}

function templateMatches(template: string, path: string): boolean {
  const source = template
    .split('/')
    .map((seg) => (seg.startsWith('{') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`).test(path);
}

/**
 * What a path filled with random uuids answers: 404, unless a parameter is a name whose pattern no
 * uuid matches (a preference key such as `agents.project_manager.model.local_default_ollama_model`); then the uuid is malformed, a 400.
 */
const missingOrMalformed = (op: Operation): number[] => (op.pathParams.some((p) => p.named) ? [400] : [404]);

/** The path with every parameter replaced: `fill` by name, a fresh random uuid otherwise. */
function pathOf(op: Operation, fill: Record<string, string> = {}): string {
  return op.path.replace(/\{([^}]+)\}/g, (_, name: string) => fill[name] ?? randomUUID());
}

/**
 * A body that satisfies the schema with made-up values, so that what is tested is the part of
 * the request that is wrong (the id, the NUL), not a missing field. `poison` (a NUL, an unpaired
 * surrogate) goes into every free-text string.
 */
function sampleOf(schema: any, poison?: string): unknown {
  const poisoned = poison !== undefined;
  if (!schema || typeof schema !== 'object') return undefined;
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const choices = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(choices)) return sampleOf(choices.find((c: any) => c.type !== 'null') ?? choices[0], poison);
  if (Array.isArray(schema.allOf)) return Object.assign({}, ...schema.allOf.map((c: any) => sampleOf(c, poison)));
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;
  switch (type) {
    case 'object': {
      // Required fields only, unless poison is wanted: then every field, to reach the free-text ones.
      const names: string[] = poisoned ? Object.keys(schema.properties ?? {}) : (schema.required ?? []);
      const out: Record<string, unknown> = {};
      for (const name of names) out[name] = sampleOf(schema.properties?.[name], poison);
      return out;
    }
    case 'string': {
      if (schema.format === 'uuid') return randomUUID();
      if (schema.format === 'date-time') return new Date(Date.now() + 86_400_000).toISOString();
      if (schema.format === 'email') return 'someone@example.com';
      let s = poisoned ? `zz${poison}sample-value` : 'zz-sample-value';
      if (typeof schema.minLength === 'number') s = s.padEnd(schema.minLength, 'x');
      if (typeof schema.maxLength === 'number') s = s.slice(0, schema.maxLength);
      return s;
    }
    case 'integer':
    case 'number':
      return schema.minimum ?? 1;
    case 'boolean':
      return false;
    case 'array':
      return schema.minItems ? [sampleOf(schema.items, poison)] : [];
    default:
      return undefined;
  }
}

describe.each(DB_KINDS)('bad input on every route (%s)', (kind) => {
  let s: TestServer;
  let ops: Operation[];
  let token: string;
  const failures: string[] = [];
  let exercised = 0;

  /** Sends one request with the admin credential (unless told otherwise) and records what is wrong. */
  async function probe(op: Operation, label: string, expected: Expected, req: { method?: string; path: string; headers?: Record<string, string>; body?: string; anonymous?: boolean }): Promise<Answer> {
    const headers: Record<string, string> = { ...req.headers };
    if (!req.anonymous) headers.authorization = `Bearer ${token}`;
    const method = req.method ?? op.method;
    const answer = await send(s.cynode.gatewayUrl, { method, path: req.path, headers, body: req.body });
    exercised++;
    const wrong = violation(answer, expected, method, OPENAI.has(op.key));
    if (wrong) failures.push(`${op.key} [${label}] ${method} ${req.path.slice(0, 80)}: ${wrong}`);
    if (answer.status < 300 && !req.anonymous) await keepAdminSignedIn();
    return answer;
  }

  /** Valid input may legitimately end the session (logout); sign in again rather than lose admin. */
  async function keepAdminSignedIn(): Promise<void> {
    if ((await s.api.call('/v1/users/me', { token })).status === 401) token = (await s.api.login('admin', ADMIN_PASSWORD)).access_token;
  }

  const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  beforeAll(async () => {
    s = await startTestServer(kind, { maxBodyBytes: 4096 });
    token = s.adminToken;
    const doc = await s.api.call('/v1/openapi.json', { token });
    expect(doc.status).toBe(200);
    ops = operationsOf(doc.body);
  });

  afterAll(async () => {
    console.info(`bad input (${kind}): ${ops?.length ?? 0} operations, ${exercised} requests`);
    await s?.close();
  });

  function expectNoFailures(): void {
    const found = failures.splice(0);
    expect(found, `\n${found.join('\n')}\n`).toEqual([]);
  }

  it('finds the routes in the OpenAPI document', () => {
    const keys = ops.map((o) => o.key);
    expect(keys).toEqual(expect.arrayContaining(['GET /healthz', 'POST /v1/auth/login', 'POST /v1/api-keys', 'DELETE /v1/api-keys/{id}', 'GET /v1/audit']));
    // Public routes are exactly the known ones: a new route that forgot its credential check shows up here.
    const documentedPublic = ops.filter((o) => o.documentedPublic).map((o) => o.key);
    expect(documentedPublic.filter((k) => !PUBLIC.has(k))).toEqual([]);
  });

  it('asks for a credential everywhere but the public routes', async () => {
    for (const op of ops) {
      const path = pathOf(op);
      if (op.method === 'HEAD') continue;
      if (PUBLIC.has(op.key)) {
        await probe(op, 'no credential', PUBLIC_WITHOUT_INPUT[op.key]!, { path, anonymous: true });
        continue;
      }
      const bodyInput = BODY_METHODS.has(op.method) ? json({}) : {};
      await probe(op, 'no credential', { status: [401] }, { path, anonymous: true, ...bodyInput });
      for (const authorization of ['Bearer not-a-token', 'Basic YWRtaW46eA==', 'Bearer ']) {
        await probe(op, `Authorization: ${authorization}`, { status: [401] }, { path, anonymous: true, headers: { authorization }, ...bodyInput });
      }
      // Fastify answers HEAD for every GET route; those need the credential just the same.
      if (op.method === 'GET') await probe(op, 'HEAD, no credential', { status: [401] }, { method: 'HEAD', path, anonymous: true });
    }
    expectNoFailures();
  });

  it('refuses bodies that are not JSON objects of the right shape', async () => {
    for (const op of ops.filter((o) => BODY_METHODS.has(o.method))) {
      const path = pathOf(op);
      const cases: Array<[string, string]> = [
        ['malformed JSON', '{"a":'],
        ['JSON array', '[]'],
        ['JSON array of objects', '[{}]'],
        ['JSON number', '42'],
        ['JSON string', '"x"'],
        ['JSON null', 'null'],
        ['__proto__ key', '{"__proto__": {"is_admin": true}}'],
        ['constructor.prototype key', '{"constructor": {"prototype": {"is_admin": true}}}'],
      ];
      for (const [label, body] of cases) await probe(op, label, { status: [400] }, { path, ...json(body) });
      // The OpenAI routes ignore an unknown field: the rest of the sample decides, and this suite has no node serving inference (503).
      await probe(op, 'unknown field', { status: OPENAI.has(op.key) ? [400, 503] : [400] }, { path, ...json(JSON.stringify({ ...(sampleOf(op.body?.schema) as object), zz_unknown_field: 1 })) });

      // Nothing at all, or an empty object: missing required fields where there are any.
      const needsFields = (op.body?.required.length ?? 0) > 0;
      const emptyExpected: Expected = needsFields ? { status: [400] } : op.pathParams.length > 0 ? { status: missingOrMalformed(op) } : (VALID_EMPTY_OBJECT[op.key] ?? { status: [400] });
      await probe(op, 'empty object', emptyExpected, { path, ...json({}) });
      await probe(op, 'no body', emptyExpected, { path });
      await probe(op, 'empty body with JSON content type', { status: [400] }, { path, headers: { 'content-type': 'application/json' }, body: '' });

      // NUL characters, or unpaired surrogates, in every free-text field of an otherwise well-formed body.
      const withNul = JSON.stringify(sampleOf(op.body?.schema, '\u0000') ?? {});
      if (withNul.includes('\\u0000')) await probe(op, 'NUL in strings', { status: [400] }, { path, ...json(withNul) });
      const withSurrogate = JSON.stringify(sampleOf(op.body?.schema, '\ud800') ?? {});
      if (withSurrogate.includes('\\ud800')) await probe(op, 'unpaired surrogate in strings', { status: [400] }, { path, ...json(withSurrogate) });
      // Nested far deeper than any body needs (the OpenAI routes ignore unknown fields, but not this); within the suite's 4 KiB body cap.
      await probe(op, 'JSON nested 1,000 deep', { status: [400] }, { path, ...json(`{"zz":${'['.repeat(1000)}${']'.repeat(1000)}}`) });
    }
    expectNoFailures();
  });

  it('answers 415 for content types other than JSON and 413 over the body cap', async () => {
    for (const op of ops.filter((o) => BODY_METHODS.has(o.method))) {
      const path = pathOf(op);
      for (const contentType of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
        await probe(op, `Content-Type ${contentType}`, { status: [415] }, { path, headers: { 'content-type': contentType }, body: 'a=b' });
      }
      await probe(op, '5000-byte body', { status: [413] }, { path, ...json(JSON.stringify({ zz: 'x'.repeat(5000) })) });
    }
    expectNoFailures();
  });

  it('refuses path parameters that are not valid ids, and answers 404 for ids that do not exist', async () => {
    for (const op of ops.filter((o) => o.pathParams.length > 0)) {
      const bodyInput = op.body ? json(sampleOf(op.body.schema)) : {};
      for (const param of op.pathParams) {
        // A uuid parameter must say the id is malformed; a free-form one (a slug) may just not find it.
        const bad: Expected = { status: param.uuid ? [400] : [400, 404] };
        for (const [label, value] of [
          ['not-a-uuid', 'not-a-uuid'],
          ['encoded ../../etc', '..%2F..%2Fetc'],
          ['300 characters', 'a'.repeat(300)],
          ['%00', '%00'],
          ['bad percent-encoding', '%zz'],
          ['uuid with trailing junk', `${randomUUID()}'--`],
          ['empty', ''],
        ] as const) {
          await probe(op, `${param.name}=${label}`, bad, { path: pathOf(op, { [param.name]: value }), ...bodyInput });
        }
        // Not percent-encoded: the path no longer matches this route, or any.
        await probe(op, `${param.name}=raw ../../etc`, { status: [404, 405] }, { path: pathOf(op, { [param.name]: '../../etc' }), ...bodyInput });
      }
      await probe(op, 'ids that do not exist', { status: missingOrMalformed(op) }, { path: pathOf(op), ...bodyInput });
    }
    expectNoFailures();
  });

  it('refuses bad and unknown query parameters', async () => {
    for (const op of ops) {
      // They ignore unknown input by contract.
      if (OPENAI.has(op.key)) continue;
      const path = pathOf(op);
      // A well-formed body only behind a random id: a server that ignored the query would
      // otherwise create things (or count failed sign-ins against this client).
      const bodyInput = op.body ? json(op.pathParams.length > 0 ? sampleOf(op.body.schema) : {}) : {};
      // Routes that take no limit or cursor refuse them as unknown; the rest refuse the values.
      for (const query of ['limit=0', 'limit=99999', 'limit=abc', 'limit=1.5', 'limit=1&limit=2', 'cursor=garbage!!', `cursor=${'x'.repeat(600)}`, 'zz_unknown=1', 'q=%00']) {
        // A cursor is opaque: only the handler decodes it, and one that first finds the parent
        // resource (the random id) missing rightly answers 404 before looking at the cursor.
        const cursorBehindId = query.startsWith('cursor=garbage') && op.queryParams.includes('cursor') && op.pathParams.length > 0;
        // Public routes (health, sign-in) refuse an unknown query parameter too.
        await probe(op, `?${query}`, { status: cursorBehindId ? [400, 404] : [400] }, { path: `${path}?${query}`, anonymous: PUBLIC.has(op.key), ...(op.method === 'HEAD' ? {} : bodyInput) });
      }
    }
    expectNoFailures();
  });

  it('answers 404 for unknown routes and 405 for unknown methods on known paths', async () => {
    const paths = [...new Set(ops.map((o) => o.path))];
    const probeOp = (path: string, method: string): Operation => ({ method, path, pathParams: [], queryParams: [], body: undefined, documentedPublic: false, key: `${method} ${path}` });
    for (const path of ['/v1/nope', '/nope', '/', '/v1', '/v1/users/me/nope/deeper', '/v1/api-keys/a/b/c', '/v1//api-keys', '/V1/API-KEYS', '/healthz/', `/v1/${'x'.repeat(3000)}`]) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        await probe(probeOp(path, method), 'unknown route', { status: [404] }, { method, path, ...(method === 'POST' ? json({}) : {}) });
        await probe(probeOp(path, method), 'unknown route, no credential', { status: [404] }, { method, path, anonymous: true });
      }
    }
    for (const path of paths) {
      const concrete = pathOf(probeOp(path, 'GET'));
      // /v1/users/me is also /v1/users/{id} for the methods only the latter declares.
      const declared = new Set(ops.filter((o) => templateMatches(o.path, concrete)).map((o) => o.method));
      for (const method of METHODS.filter((m) => !declared.has(m))) {
        await probe(probeOp(path, method), 'unknown method', { status: [405] }, { method, path: concrete, ...(BODY_METHODS.has(method) ? json({}) : {}) });
      }
    }
    expectNoFailures();
  });

  it('leaves the admin account usable', async () => {
    // The runs above must not have disabled admin or changed its password.
    const again = await s.api.login('admin', ADMIN_PASSWORD);
    expect((await s.api.call('/v1/users/me', { token: again.access_token })).body).toMatchObject({ handle: 'admin', is_active: true });
  });
});
