import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../server/http/server';
import { unauthorized } from '../../server/http/problem';

/*
 * The HTTP layer on a real socket: a request whose body does not arrive in time is answered 408
 * and gives its place back, and a server that has not finished starting answers only health.
 */

let app: HttpServer | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function server(o: { started?: () => boolean } = {}): Promise<{ app: HttpServer; port: number }> {
  const created = await createHttpServer({
    name: 'test',
    logLevel: 'silent',
    maxBodyBytes: 4096,
    // One place per address for requests without a credential.
    maxConcurrentRequests: 8,
    requestTimeoutSeconds: 1,
    allowedOrigins: [],
    allowedHosts: [],
    started: o.started,
    authenticate: async () => {
      throw unauthorized();
    },
  });
  created.post('/echo', { config: { auth: 'none' } }, async (request) => ({ got: request.body }));
  created.get('/healthz', { config: { auth: 'none', health: true } }, async () => 'ok');
  created.get('/work', { config: { auth: 'none' } }, async () => 'done');
  await created.listen({ host: '127.0.0.1', port: 0 });
  app = created;
  return { app: created, port: (created.server.address() as AddressInfo).port };
}

/** Everything the server sends on one connection until it closes it (or `deadlineMs` passes). */
function exchange(port: number, bytes: string, deadlineMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), deadlineMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}

const work = (port: number) => fetch(`http://127.0.0.1:${port}/work`);

describe('slow request bodies', () => {
  it('answers a body that does not arrive within the request timeout with a 408 problem, and frees its place', async () => {
    const { port } = await server();
    // Far more than the 1 s limit, far less than Node's own 30 s check: only the configured timeout answers in time.
    const answered = exchange(port, 'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"a":', 15_000);
    const held = await waitFor(async () => (await work(port)).status === 429);
    expect(held).toBe(true);

    const raw = await answered;
    expect(raw).toMatch(/^HTTP\/1\.1 408/);
    expect(raw).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 408 });
    // The address's one place is free again.
    expect(await waitFor(async () => (await work(port)).status === 200)).toBe(true);
  });
});

describe('a server that has not finished starting', () => {
  it('answers every route but health with 503 and Retry-After, then serves once started', async () => {
    let started = false;
    const { port } = await server({ started: () => started });
    const early = await work(port);
    expect(early.status).toBe(503);
    expect(early.headers.get('retry-after')).toBe('1');
    expect(early.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const echo = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(echo.status).toBe(503);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    started = true;
    expect((await work(port)).status).toBe(200);
  });
});

/** Polls until `check` holds; false when it never did. */
async function waitFor(check: () => Promise<boolean>, tries = 200): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}
