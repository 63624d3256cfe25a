import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type ApiResponse, type TestServer } from '../support/harness';

const CONSOLE_ORIGIN = 'http://console.example:5173';

/** What a client relies on in every error answer. */
function expectProblem(res: ApiResponse, status: number): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) });
  expect(res.body.instance).toBe(res.headers.get('x-request-id'));
  expect(res.text).not.toMatch(/ {4}at |node_modules|Error:/);
}

interface RawAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
}

function readAnswer(res: IncomingMessage): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    res.on('error', reject);
  });
}

/**
 * A signed-in request whose headers promise a body it only half sends: the server accepted it and
 * is still reading it, so it counts as in flight until it is finished or abandoned.
 */
interface Held {
  req: ClientRequest;
  answer: Promise<RawAnswer>;
  /** Answered already: turned away rather than held. */
  answered(): boolean;
  finish(): void;
  abort(): void;
}

function heldRequest(baseUrl: string, token: string): Held {
  // A run of a task that does not exist: read in full, then 404, and nothing changes.
  const url = new URL('/v1/runs', baseUrl);
  const body = JSON.stringify({ task_id: '00000000-0000-4000-8000-000000000000' });
  const req = httpRequest({
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': String(body.length), authorization: `Bearer ${token}` },
  });
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    req.on('response', (res) => readAnswer(res).then(resolve, reject));
    req.on('error', reject);
  });
  let answered = false;
  answer.then(
    () => (answered = true),
    () => {},
  );
  req.flushHeaders();
  req.write(body.slice(0, 10));
  return {
    req,
    answer,
    answered: () => answered,
    finish: () => req.end(body.slice(10)),
    abort: () => {
      answer.catch(() => {});
      req.destroy();
    },
  };
}

/** Bytes straight onto a socket, for requests no HTTP client would send. */
function rawExchange(baseUrl: string, bytes: string): Promise<string> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(bytes));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.on('close', () => resolve(text));
    socket.on('error', (e) => (text ? resolve(text) : reject(e)));
  });
}

function parseRawResponse(raw: string): { status: number; headers: Map<string, string>; body: any } {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: body ? JSON.parse(body) : undefined };
}

function jwtPart(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe.each(DB_KINDS)('HTTP conventions on %s', (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind, { allowedOrigins: [CONSOLE_ORIGIN], allowedHosts: ['cynode.lan'], maxBodyBytes: 4096 });
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('health', () => {
    it('/healthz answers 200 text "ok" without a credential', async () => {
      const res = await s.api.call('/healthz');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(res.text).toBe('ok');
    });

    it('/readyz answers 503 with the operator-actionable reason until inference exists', async () => {
      const res = await s.api.call('/readyz');
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(res.text).toContain('no inference path');
    });
  });

  describe('request ids', () => {
    it('echoes a valid X-Request-Id and uses it as the problem instance', async () => {
      const res = await s.api.call('/v1/no-such-route', { headers: { 'x-request-id': 'console-42.retry:1' } });
      expect(res.headers.get('x-request-id')).toBe('console-42.retry:1');
      expectProblem(res, 404);
      expect(res.body.instance).toBe('console-42.retry:1');
    });

    it('generates one when it is missing or not acceptable', async () => {
      const answers = [
        await s.api.call('/v1/no-such-route'),
        await s.api.call('/v1/no-such-route', { headers: { 'x-request-id': 'has spaces in it' } }),
        await s.api.call('/v1/no-such-route', { headers: { 'x-request-id': 'x'.repeat(500) } }),
      ];
      const ids = answers.map((a) => a.headers.get('x-request-id'));
      for (const [i, a] of answers.entries()) {
        expectProblem(a, 404);
        expect(ids[i]).toMatch(/^[0-9a-f-]{36}$/);
      }
      expect(new Set(ids).size).toBe(3);
    });

    it('puts the request id on successful answers too', async () => {
      const res = await s.api.call('/v1/users/me', { token: s.adminToken, headers: { 'x-request-id': 'me-1' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe('me-1');
    });
  });

  describe('security headers', () => {
    it('sends them on plain, JSON and problem answers alike', async () => {
      const answers = [await s.api.call('/healthz'), await s.api.call('/v1/users/me', { token: s.adminToken }), await s.api.call('/v1/users/me')];
      for (const res of answers) {
        const csp = res.headers.get('content-security-policy') ?? '';
        expect(csp).toContain("frame-ancestors 'none'");
        expect(csp).toContain("default-src 'self'");
        expect(csp).not.toContain('upgrade-insecure-requests');
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.headers.get('referrer-policy')).toBe('no-referrer');
        expect(res.headers.get('x-frame-options')).toBe('DENY');
        // HSTS on plain HTTP would only mislead.
        expect(res.headers.get('strict-transport-security')).toBeNull();
      }
    });
  });

  describe('origin allowlist', () => {
    it('refuses a foreign browser origin with a 403 problem, even with a valid credential', async () => {
      const res = await s.api.call('/v1/users/me', { token: s.adminToken, headers: { origin: 'http://evil.example' } });
      expectProblem(res, 403);
      const opaque = await s.api.call('/v1/users/me', { token: s.adminToken, headers: { origin: 'null' } });
      expectProblem(opaque, 403);
    });

    it('lets the gateway itself and configured origins through', async () => {
      const host = new URL(s.cynode.gatewayUrl).host;
      const same = await s.api.call('/v1/users/me', { token: s.adminToken, headers: { origin: `http://${host}` } });
      expect(same.status).toBe(200);
      const configured = await s.api.call('/v1/users/me', { token: s.adminToken, headers: { origin: CONSOLE_ORIGIN } });
      expect(configured.status).toBe(200);
      // Same host but another port is another origin.
      const otherPort = await s.api.call('/v1/users/me', { token: s.adminToken, headers: { origin: 'http://127.0.0.1:1' } });
      expectProblem(otherPort, 403);
    });
  });

  describe('Host header', () => {
    /** node:http: fetch will not send a Host of our choosing. */
    const send = (baseUrl: string, path: string, host: string, o: { body?: unknown; token?: string; origin?: string } = {}): Promise<RawAnswer> => {
      const u = new URL(baseUrl);
      const body = o.body === undefined ? undefined : JSON.stringify(o.body);
      const headers: Record<string, string> = { host };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      if (o.origin) headers.origin = o.origin;
      return new Promise((resolve, reject) => {
        const req = httpRequest({ host: u.hostname, port: u.port, path, method: body === undefined ? 'GET' : 'POST', agent: false, headers }, (res) => readAnswer(res).then(resolve, reject));
        req.on('error', reject);
        req.end(body);
      });
    };
    const signIn = (host: string) => send(s.cynode.gatewayUrl, '/v1/auth/login', host, { body: { handle: 'admin', password: s.adminPassword }, origin: `http://${host}` });

    it('refuses a name this server does not go by, whatever the Origin (a page whose DNS points here)', async () => {
      const port = new URL(s.cynode.gatewayUrl).port;
      const rebound = await signIn(`evil.example:${port}`);
      expect(rebound.status).toBe(421);
      expect(rebound.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(rebound.text).not.toContain('access_token');
      expect((await send(s.cynode.gatewayUrl, '/v1/users/me', `evil.example:${port}`, { token: s.adminToken })).status).toBe(421);
      // The control plane too.
      const control = new URL(s.cynode.controlUrl);
      expect((await send(s.cynode.controlUrl, '/v1/nodes/config', `evil.example:${control.port}`)).status).toBe(421);
      expect((await send(s.cynode.controlUrl, '/healthz', `evil.example:${control.port}`)).status).toBe(421);
    });

    it("answers loopback names, this machine's name and configured names", async () => {
      const port = new URL(s.cynode.gatewayUrl).port;
      for (const name of ['127.0.0.1', 'localhost', '[::1]', hostname(), 'cynode.lan']) {
        const host = `${name}:${port}`;
        expect((await signIn(host)).status, host).toBe(200);
      }
      const control = new URL(s.cynode.controlUrl);
      expect((await send(s.cynode.controlUrl, '/healthz', `cynode.lan:${control.port}`)).status).toBe(200);
    });
  });

  describe('OpenAPI document', () => {
    it('needs a credential', async () => {
      expectProblem(await s.api.call('/v1/openapi.json'), 401);
    });

    it('is OpenAPI 3.1, lists the routes and summarises every operation', async () => {
      const res = await s.api.call('/v1/openapi.json', { token: s.adminToken });
      expect(res.status).toBe(200);
      expect(res.body.openapi).toMatch(/^3\.1\.\d+$/);
      expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/v1/auth/login', '/v1/api-keys', '/v1/api-keys/{id}', '/healthz', '/readyz']));
      const unsummarised: string[] = [];
      for (const [path, item] of Object.entries<Record<string, any>>(res.body.paths)) {
        for (const [method, op] of Object.entries<any>(item)) {
          if (typeof op?.summary !== 'string' || op.summary.trim() === '') unsummarised.push(`${method.toUpperCase()} ${path}`);
        }
      }
      expect(unsummarised).toEqual([]);
    });
  });

  describe('request bodies', () => {
    it('rejects an unknown field with a 400 that names it, and creates nothing', async () => {
      const res = await s.api.call('/v1/api-keys', { token: s.adminToken, body: { name: 'colourful', colour: 'red' } });
      expectProblem(res, 400);
      expect(res.body.detail).toContain('colour');
      const list = await s.api.call('/v1/api-keys', { token: s.adminToken });
      expect(list.body.api_keys.map((k: { name: string }) => k.name)).not.toContain('colourful');
    });

    it('rejects wrong types instead of coercing them', async () => {
      for (const body of [{ name: 123 }, { name: ['a-list'] }, { name: true }, { name: null }]) {
        const res = await s.api.call('/v1/api-keys', { token: s.adminToken, body });
        expectProblem(res, 400);
        expect(res.body.detail).toContain('name');
      }
      const login = await s.api.call('/v1/auth/login', { body: { handle: ['admin'], password: 'admin-password-1' } });
      expectProblem(login, 400);
    });

    it('rejects malformed JSON and JSON that is not an object', async () => {
      for (const rawBody of ['{"name":', '[]', '42', '"name"', 'null', '{"__proto__": {"admin": true}}', '{"constructor": {"prototype": {"admin": true}}}']) {
        const res = await s.api.call('/v1/api-keys', { token: s.adminToken, rawBody });
        expectProblem(res, 400);
      }
    });

    it('survives deeply nested JSON', async () => {
      const deepArray = '['.repeat(2000) + ']'.repeat(2000);
      const deepObject = '{"name":' + '{"a":'.repeat(500) + '1' + '}'.repeat(501);
      const deepProto = '{"name":' + '{"__proto__":'.repeat(250) + '1' + '}'.repeat(251);
      for (const rawBody of [deepArray, deepObject, deepProto]) {
        expectProblem(await s.api.call('/v1/api-keys', { token: s.adminToken, rawBody }), 400);
      }
      expect((await s.api.call('/healthz')).status).toBe(200);
    });

    it('rejects NUL characters, which no text column can store', async () => {
      const res = await s.api.call('/v1/api-keys', { token: s.adminToken, body: { name: 'nul\u0000key' } });
      expectProblem(res, 400);
      expect(res.body.detail).toContain('body.name');
    });

    it('says a body is required when a route with required fields gets none', async () => {
      const res = await s.api.call('/v1/api-keys', { method: 'POST', token: s.adminToken });
      expectProblem(res, 400);
      expect(res.body.detail).toMatch(/body is required/);
      const empty = await s.api.call('/v1/api-keys', { method: 'POST', token: s.adminToken, rawBody: '' });
      expectProblem(empty, 400);
    });

    it('accepts no body at all where every field is optional (logout)', async () => {
      const t = await s.api.login('admin', 'admin-password-1');
      const out = await s.api.call('/v1/auth/logout', { method: 'POST', token: t.access_token });
      expect(out.status).toBe(204);
      expect((await s.api.call('/v1/users/me', { token: t.access_token })).status).toBe(401);
    });

    it('refuses a body where the route takes none', async () => {
      const created = await s.api.call('/v1/api-keys', { token: s.adminToken, body: { name: 'to-revoke' } });
      const res = await s.api.call(`/v1/api-keys/${created.body.id}`, { method: 'DELETE', token: s.adminToken, body: { really: true } });
      expectProblem(res, 400);
      // Nothing happened: the key still works.
      expect((await s.api.call('/v1/users/me', { token: created.body.key })).status).toBe(200);
    });

    it('answers 413 for a body over the cap, announced or streamed', async () => {
      const big = JSON.stringify({ name: 'x'.repeat(5000) });
      expectProblem(await s.api.call('/v1/api-keys', { token: s.adminToken, rawBody: big }), 413);
      // Without Content-Length the server finds out while reading.
      const chunked = await new Promise<RawAnswer>((resolve, reject) => {
        const url = new URL('/v1/api-keys', s.cynode.gatewayUrl);
        const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${s.adminToken}` } });
        req.on('response', (r) => readAnswer(r).then(resolve, reject));
        req.on('error', reject);
        for (let i = 0; i < 5; i++) req.write(big.slice(i * 1000, (i + 1) * 1000));
        req.end(big.slice(5000));
      });
      expect(chunked.status).toBe(413);
      expect(chunked.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(chunked.text)).toMatchObject({ status: 413, instance: chunked.headers['x-request-id'] });
    });

    it('answers 415 for a content type it does not speak', async () => {
      for (const contentType of ['application/xml', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const res = await s.api.call('/v1/api-keys', { token: s.adminToken, rawBody: 'name=x', headers: { 'content-type': contentType } });
        expectProblem(res, 415);
      }
    });
  });

  describe('query strings and paths', () => {
    it('rejects repeated, out-of-range and unknown query parameters', async () => {
      for (const q of ['limit=1&limit=2', 'limit=0', 'limit=201', 'limit=1.5', 'limit=abc', 'cursor=garbage!!', 'colour=red']) {
        expectProblem(await s.api.call(`/v1/audit?${q}`, { token: s.adminToken }), 400);
      }
      const unknown = await s.api.call('/v1/api-keys?colour=red', { token: s.adminToken });
      expectProblem(unknown, 400);
      expect(unknown.body.detail).toContain('colour');
      expect((await s.api.call('/v1/audit?limit=2', { token: s.adminToken })).status).toBe(200);
    });

    it('answers ids that are not ids, bad percent-encoding and over-long segments with a 400 problem', async () => {
      for (const id of ['not-a-uuid', '%00', '%zz', 'x'.repeat(300), '..%2F..%2Fetc']) {
        expectProblem(await s.api.call(`/v1/api-keys/${id}`, { method: 'DELETE', token: s.adminToken }), 400);
      }
    });

    it('answers 404 for unknown routes and 405 with Allow for unknown methods', async () => {
      expectProblem(await s.api.call('/v1/nothing-here', { token: s.adminToken }), 404);
      expectProblem(await s.api.call('/nothing-here'), 404);
      const put = await s.api.call('/v1/api-keys', { method: 'PUT', token: s.adminToken, body: {} });
      expectProblem(put, 405);
      expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
      const options = await s.api.call('/v1/api-keys/00000000-0000-4000-8000-000000000000', { method: 'OPTIONS' });
      expectProblem(options, 405);
      expect(options.headers.get('allow')).toBe('DELETE');
    });
  });

  describe('credentials', () => {
    it('refuses malformed Authorization headers with a 401 problem', async () => {
      for (const authorization of ['Basic YWRtaW46YWRtaW4=', 'Bearer', 'Bearer ', `Bearer ${'a'.repeat(10_240)}`, 'Bearer a b', s.adminToken]) {
        expectProblem(await s.api.call('/v1/users/me', { headers: { authorization } }), 401);
      }
    });

    it('refuses tokens signed with another key, unsigned, or tampered with', async () => {
      const [header, payload, signature] = s.adminToken.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      const otherKey = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new Uint8Array(32).fill(7));
      const unsigned = `${jwtPart({ alg: 'none', typ: 'JWT' })}.${payload}.`;
      const tampered = `${header}.${jwtPart({ ...claims, sub: '00000000-0000-4000-8000-000000000000' })}.${signature}`;
      const expired = `${header}.${jwtPart({ ...claims, exp: 1 })}.${signature}`;
      for (const token of [otherKey, unsigned, tampered, expired]) {
        expectProblem(await s.api.call('/v1/users/me', { token }), 401);
      }
      // The genuine token is still fine: the failures above were about the tokens.
      expect((await s.api.call('/v1/users/me', { token: s.adminToken })).status).toBe(200);
    });
  });

  describe('requests Node itself cannot parse', () => {
    it('answers garbage with a 400 problem', async () => {
      const res = parseRawResponse(await rawExchange(s.cynode.gatewayUrl, 'THIS IS NOT HTTP\r\n\r\n'));
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 400, instance: res.headers.get('x-request-id') });
    });

    it('answers oversized headers with a 431 problem', async () => {
      const res = parseRawResponse(await rawExchange(s.cynode.gatewayUrl, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
      expect(res.status).toBe(431);
      expect(res.body).toMatchObject({ status: 431, instance: res.headers.get('x-request-id') });
    });
  });
});

describe.each(DB_KINDS)('concurrency cap on %s', (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    // Held requests stay in flight as long as the test needs them.
    s = await startTestServer(kind, { maxConcurrentRequests: 2, requestTimeoutSeconds: 120 });
  });
  afterAll(async () => {
    await s?.close();
  });

  /** The in-flight count drops when the response closes; give the server the moment it needs. */
  async function until(check: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('condition never held');
  }
  const signedIn = () => s.api.call('/v1/users/me', { token: s.adminToken });
  const passes = async () => (await signedIn()).status === 200;
  const busy = async () => (await signedIn()).status === 429;
  const held = () => heldRequest(s.cynode.gatewayUrl, s.adminToken);
  /**
   * Waits until the cap is reached, which only the held requests can do. A probe that took a
   * place a moment before a held request arrived has that request turned away: it is sent again.
   */
  const inFlight = (list: Held[]) =>
    until(async () => {
      let resent = false;
      for (const [i, h] of list.entries()) {
        if (!h.answered()) continue;
        list[i] = held();
        resent = true;
      }
      // A probe sent at once would win the race again.
      if (resent) await new Promise((r) => setTimeout(r, 100));
      return !resent && busy();
    });

  it('answers 429 with Retry-After beyond the cap, and recovers when requests finish or are abandoned', async () => {
    const first = [held(), held()];
    // Both are in flight once a third request is refused.
    await inFlight(first);
    const [a, b] = first as [Held, Held];
    const refused = await signedIn();
    expectProblem(refused, 429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Health checks and requests that need no credential are counted apart.
    expect((await s.api.call('/healthz')).status).toBe(200);
    expect((await s.api.call('/v1/setup')).status).toBe(200);

    // A finished request frees its slot.
    a.finish();
    expect((await a.answer).status).toBe(404);
    await until(passes);

    // Abandoned requests free theirs too.
    const second = [b, held()];
    await inFlight(second);
    for (const h of second) h.abort();
    await until(passes);

    // Exactly two slots again: not leaked, not counted twice.
    const third = [held(), held()];
    await inFlight(third);
    const [d, e] = third as [Held, Held];
    d.finish();
    e.finish();
    expect((await d.answer).status).toBe(404);
    expect((await e.answer).status).toBe(404);
    await until(passes);
  });
});
