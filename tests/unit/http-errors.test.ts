import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../server/http/server';
import { HttpProblem, unauthorized } from '../../server/http/problem';

/** What PostgreSQL (pg and PGlite alike) throws: a message full of SQL, a SQLSTATE, a severity. */
class FakeDatabaseError extends Error {
  readonly severity = 'ERROR';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const SQL_MESSAGE = 'invalid input syntax for type uuid: "x" at SELECT * FROM users WHERE id = $1';

async function server(): Promise<HttpServer> {
  const app = await createHttpServer({
    name: 'test',
    logLevel: 'silent',
    maxBodyBytes: 4096,
    maxConcurrentRequests: 10,
    requestTimeoutSeconds: 10,
    allowedOrigins: [],
    allowedHosts: [],
    authenticate: async () => {
      throw unauthorized();
    },
  });
  const open = { config: { auth: 'none' as const } };
  app.get('/boom', open, async () => {
    throw new Error(`connect ECONNREFUSED /work/secret/path: ${SQL_MESSAGE}`);
  });
  app.get('/typeerror', open, async () => {
    const nothing = null as unknown as { x: number };
    return nothing.x;
  });
  app.get('/db/:code', open, async (request) => {
    throw new FakeDatabaseError((request.params as { code: string }).code, SQL_MESSAGE);
  });
  app.get('/problem', open, async () => {
    throw new HttpProblem(429, 'Slow down', { retry_after: 3 }, { 'retry-after': '3' });
  });
  app.get('/openai', { config: { auth: 'none', errorFormat: 'openai' } }, async () => {
    throw new HttpProblem(404, 'The model does not exist', { code: 'model_not_found' });
  });
  app.get('/openai-boom', { config: { auth: 'none', errorFormat: 'openai' } }, async () => {
    throw new Error(SQL_MESSAGE);
  });
  return app;
}

describe('error answers', () => {
  let app: HttpServer | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('keeps 5xx bodies generic: no message, no stack, no paths, no SQL', async () => {
    app = await server();
    for (const url of ['/boom', '/typeerror']) {
      const res = await app.inject({ url, headers: { 'x-request-id': 'req-5xx' } });
      expect(res.statusCode).toBe(500);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toEqual({
        type: 'urn:cynode:error:internal',
        title: 'Internal Server Error',
        status: 500,
        detail: 'An unexpected error occurred; the request id identifies it in the server log',
        instance: 'req-5xx',
      });
    }
  });

  it('answers values PostgreSQL refuses as 4xx, without the SQL', async () => {
    app = await server();
    const cases: Array<[string, number]> = [
      ['22P02', 400], // invalid text representation (a uuid column given "x")
      ['22021', 400], // NUL or bad UTF-8
      ['22001', 400], // value too long
      ['23502', 400], // missing value
      ['23514', 400], // check constraint
      ['23505', 409], // unique
      ['23503', 409], // foreign key
      ['40P01', 500], // deadlock: the server's problem, not the client's
      ['57014', 500], // statement timeout
    ];
    for (const [code, status] of cases) {
      const res = await app.inject({ url: `/db/${code}` });
      expect(res.statusCode, code).toBe(status);
      expect(res.body).not.toMatch(/SELECT|uuid|users/);
      expect(res.json().status).toBe(status);
    }
  });

  it('passes problem extensions and headers through', async () => {
    app = await server();
    const res = await app.inject({ url: '/problem' });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('3');
    expect(res.json()).toMatchObject({ title: 'Too Many Requests', detail: 'Slow down', retry_after: 3 });
  });

  it('answers the OpenAI-compatible routes in the OpenAI error shape, never problem details', async () => {
    app = await server();
    const res = await app.inject({ url: '/openai' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ error: { message: 'The model does not exist', type: 'cynodeai_error', param: null, code: 'model_not_found' } });
    const boom = await app.inject({ url: '/openai-boom' });
    expect(boom.statusCode).toBe(500);
    expect(boom.body).not.toContain('SELECT');
    expect(boom.json().error.code).toBe('cynodeai_internal_error');
  });

  it('answers 503 problems to requests that arrive while the server shuts down', async () => {
    app = await server();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inSlow = new Promise<void>((r) => (entered = r));
    app.get('/slow', { config: { auth: 'none' } }, async () => {
      entered();
      await released;
      return 'done';
    });
    // Hooks run in the order they were added: once these run, the server's own have.
    let closing!: () => void;
    const isClosing = new Promise<void>((r) => (closing = r));
    app.addHook('preClose', async () => closing());
    await app.listen({ host: '127.0.0.1', port: 0 });
    let lateArrived!: () => void;
    const isLateArrived = new Promise<void>((r) => (lateArrived = r));
    app.server.on('request', (req: IncomingMessage) => {
      if (req.headers['x-request-id'] === 'late-1') lateArrived();
    });
    const { port } = app.server.address() as AddressInfo;

    // A connection busy with a slow request stays open while the server closes; the next request
    // on it arrives after shutdown began.
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (received += c));
    const ended = new Promise<void>((r) => socket.on('close', () => r()));
    socket.write('GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await inSlow;

    const closed = app.close();
    await isClosing;
    socket.write('GET /boom HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: late-1\r\n\r\n');
    await isLateArrived;
    release();
    await closed;
    socket.end();
    await ended;
    app = undefined;

    const late = received.slice(received.indexOf('HTTP/1.1', 1));
    expect(received.startsWith('HTTP/1.1 200')).toBe(true);
    expect(late).toMatch(/^HTTP\/1\.1 503/);
    expect(late).toMatch(/content-type: application\/problem\+json/i);
    expect(late).toMatch(/retry-after: 1/i);
    const body = JSON.parse(late.slice(late.indexOf('\r\n\r\n') + 4));
    expect(body).toMatchObject({ status: 503, instance: 'late-1' });
  });
});
