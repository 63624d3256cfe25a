import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import { createServer } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressGuard, parseAllowList } from '../../server/connectors/egress';
import { parseApprovedCommands } from '../../server/connectors/mcp-commands';
import { checkAgainst, ConnectorError, mayRetry, type CredentialSecret, type OperationSpec } from '../../server/connectors/types/contract';
import { mcpDriverWith, operationNamed } from '../../server/connectors/types/mcp';
import { connectorFailure } from '../support/connector-calls';

// The mcp driver against the reference servers published on npm, started from node_modules:
// server-everything (stdio and Streamable HTTP), server-memory and server-filesystem.

const servers = resolve('node_modules/@modelcontextprotocol');
const everythingJs = join(servers, 'server-everything/dist/index.js');
const work = mkdtempSync(join(tmpdir(), 'cynode-mcp-'));
const files = join(work, 'files');
const memoryFile = join(work, 'memory.jsonl');

const commands = parseApprovedCommands(
  JSON.stringify({
    everything: { argv: [process.execPath, everythingJs, 'stdio'], credential_env: 'API_KEY' },
    memory: { argv: [process.execPath, join(servers, 'server-memory/dist/index.js')], env: { MEMORY_FILE_PATH: memoryFile } },
    files: [process.execPath, join(servers, 'server-filesystem/dist/index.js'), files],
    'everything-args': { argv: [process.execPath, everythingJs], allow_args: true },
  }),
);
const driver = mcpDriverWith(() => commands);
const noEgress = new EgressGuard();
const loopback = new EgressGuard({ allow: parseAllowList('127.0.0.1') });

const stdio = (command: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ transport: 'stdio', command, ...extra });

async function discover(config: Record<string, unknown>, credential: CredentialSecret | null = null, egress = noEgress): Promise<OperationSpec[]> {
  checkAgainst(driver.spec.configSchema, config, 'The configuration');
  return driver.discover!({ config, credential, signal: AbortSignal.timeout(30_000), egress });
}

async function call(
  config: Record<string, unknown>,
  operation: OperationSpec,
  params: Record<string, unknown>,
  credential: CredentialSecret | null = null,
  egress = noEgress,
): Promise<{ content: { type: string; text?: string }[]; structuredContent?: Record<string, unknown> }> {
  checkAgainst(driver.spec.configSchema, config, 'The configuration');
  const result = await driver.invoke({ config, credential, operation, params, signal: AbortSignal.timeout(operation.timeoutMs), egress });
  checkAgainst(operation.resultSchema, result, 'The result');
  return result as { content: { type: string; text?: string }[] };
}

const failure = connectorFailure;

const text = (result: { content: { type: string; text?: string }[] }): string => result.content.map((c) => c.text ?? '').join('');

let everythingOps: OperationSpec[];
const op = (name: string): OperationSpec => {
  const found = everythingOps.find((o) => o.name === name);
  if (!found) throw new Error(`no operation ${name}`);
  return found;
};

beforeAll(async () => {
  everythingOps = await discover(stdio('everything'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('mcp connector over stdio (server-everything)', () => {
  it('discovers the server\'s tools as operations with their input schemas and retry from their hints', () => {
    const names = everythingOps.map((o) => o.name);
    expect(names).toEqual(expect.arrayContaining(['echo', 'get-env', 'get-sum', 'toggle-simulated-logging']));
    expect(names.length).toBeGreaterThanOrEqual(10);
    const echo = op('echo');
    expect(echo.requestSchema).toMatchObject({ type: 'object', properties: { message: { type: 'string' } }, required: ['message'] });
    expect(echo.timeoutMs).toBeLessThanOrEqual(60_000);
    // echo is read-only: retried on a transient failure; a state-changing tool never is.
    expect(mayRetry(echo, new ConnectorError('transient', 'x'), 1)).toBe(true);
    const toggle = op('toggle-simulated-logging');
    expect(toggle.idempotent).toBe(false);
    expect(toggle.retry.attempts).toBe(1);
    expect(driver.spec.operations).toEqual([]);
  });

  it('calls a tool and answers its content', async () => {
    const started = performance.now();
    const result = await call(stdio('everything'), op('echo'), { message: 'hello from CyNode' });
    const ms = performance.now() - started;
    expect(text(result)).toBe('Echo: hello from CyNode');
    const sum = await call(stdio('everything'), op('get-sum'), { a: 2, b: 40 });
    expect(text(sum)).toContain('42');
    // One call starts and stops a server process: a few hundred milliseconds on a quiet machine.
    console.info(`mcp stdio call (spawn, initialize, list, call, close): ${Math.round(ms)} ms`);
  });

  it('gives the server its own credential and nothing of CyNode\'s environment', async () => {
    process.env.CYNODE_MASTER_KEY = 'canary-master-key';
    process.env.OTHER_SECRET = 'canary-other';
    try {
      const [a, b] = await Promise.all([
        call(stdio('everything'), op('get-env'), {}, { type: 'api_key', key: 'instance-a-key' }),
        call(stdio('everything'), op('get-env'), {}, { type: 'bearer_token', token: 'instance-b-token' }),
      ]);
      const envA = JSON.parse(text(a)) as Record<string, string>;
      const envB = JSON.parse(text(b)) as Record<string, string>;
      expect(envA.API_KEY).toBe('instance-a-key');
      expect(envB.API_KEY).toBe('instance-b-token');
      for (const env of [envA, envB]) {
        expect(env.CYNODE_MASTER_KEY).toBeUndefined();
        expect(env.OTHER_SECRET).toBeUndefined();
        expect(JSON.stringify(env)).not.toContain('canary');
        // Only the SDK's inherited basics and the credential.
        expect(Object.keys(env).filter((k) => !['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'API_KEY'].includes(k))).toEqual([]);
      }
      expect(JSON.stringify(envA)).not.toContain('instance-b-token');
      expect(JSON.stringify(envB)).not.toContain('instance-a-key');
    } finally {
      delete process.env.CYNODE_MASTER_KEY;
      delete process.env.OTHER_SECRET;
    }
  });

  it('refuses a command that is not on the approved list, and instance arguments it does not allow', async () => {
    for (const command of ['not-approved', 'node']) {
      const e = await failure(call(stdio(command), op('echo'), { message: 'x' }));
      expect(e.failure).toBe('validation_error');
    }
    const args = await failure(call(stdio('everything', { args: ['sse'] }), op('echo'), { message: 'x' }));
    expect(args.failure).toBe('validation_error');
    const withArgs = await call(stdio('everything-args', { args: ['stdio'] }), op('echo'), { message: 'args' });
    expect(text(withArgs)).toBe('Echo: args');
    // A credential goes only where the administrator named a variable for it.
    const noVar = await failure(call(stdio('everything-args', { args: ['stdio'] }), op('echo'), { message: 'x' }, { type: 'api_key', key: 'k' }));
    expect(noVar.failure).toBe('validation_error');
    // An empty or unreadable list approves nothing.
    const closed = mcpDriverWith(() => parseApprovedCommands('{"x": ["/bin/true"'));
    const unreadable = await failure(closed.invoke({ config: stdio('everything'), credential: null, operation: op('echo'), params: { message: 'x' }, signal: AbortSignal.timeout(5000), egress: noEgress }));
    expect(unreadable.failure).toBe('permanent');
    expect(() => parseApprovedCommands('{"bad name!": ["x"]}')).toThrow(/not a valid command name/);
    expect(() => parseApprovedCommands('{"x": {"argv": []}}')).toThrow(/"x" is not valid/);
  });

  it('refuses parameters that fail the tool\'s input schema, against the server\'s current schema too', async () => {
    const early = await failure(call(stdio('everything'), op('echo'), { message: 3 }));
    expect(early.failure).toBe('validation_error');
    expect(early.message).not.toContain('3');
    const live = await failure(call(stdio('everything'), operationNamed('echo'), { nothing: true }));
    expect(live.failure).toBe('validation_error');
    const unknown = await failure(call(stdio('everything'), operationNamed('no-such-tool'), {}));
    expect(unknown.failure).toBe('validation_error');
  });

  it('gives up on a tool that runs past the operation\'s time limit as transient, and stops the server', async () => {
    const slow = { ...op('trigger-long-running-operation'), timeoutMs: 3000 };
    const started = performance.now();
    const e = await failure(call(stdio('everything'), slow, { duration: 30, steps: 3 }));
    expect(e.failure).toBe('transient');
    expect(performance.now() - started).toBeLessThan(10_000);
    // No server process of this test is left running.
    const left = spawnSync('pgrep', ['-P', String(process.pid), '-f', `${everythingJs} stdio`], { encoding: 'utf8' });
    expect(left.stdout.trim()).toBe('');
  });

  it('reports a server that cannot start as a permanent failure', async () => {
    const broken = mcpDriverWith(() => parseApprovedCommands(JSON.stringify({ gone: [join(work, 'no-such-program')] })));
    const e = await failure(broken.invoke({ config: stdio('gone'), credential: null, operation: operationNamed('echo'), params: {}, signal: AbortSignal.timeout(10_000), egress: noEgress }));
    expect(e.failure).toBe('permanent');
    expect(await broken.health({ config: stdio('gone'), credential: null, signal: AbortSignal.timeout(10_000), egress: noEgress })).toMatchObject({ ok: false });
    expect(await driver.health({ config: stdio('everything'), credential: null, signal: AbortSignal.timeout(10_000), egress: noEgress })).toEqual({ ok: true });
  });
});

describe('mcp connector with server-memory', () => {
  it('creates entities and reads them back from the graph', async () => {
    const ops = await discover(stdio('memory'));
    const byName = (n: string): OperationSpec => ops.find((o) => o.name === n)!;
    expect(ops.map((o) => o.name)).toEqual(expect.arrayContaining(['create_entities', 'read_graph']));
    await call(stdio('memory'), byName('create_entities'), {
      entities: [{ name: 'CyNode', entityType: 'project', observations: ['orchestrates models'] }],
    });
    const graph = await call(stdio('memory'), byName('read_graph'), {});
    expect(graph.structuredContent).toMatchObject({ entities: [{ name: 'CyNode', entityType: 'project', observations: ['orchestrates models'] }] });
  });
});

describe('mcp connector with server-filesystem', () => {
  beforeAll(() => {
    mkdirSync(files, { recursive: true });
    writeFileSync(join(files, 'notes.txt'), 'inside the allowed directory');
    writeFileSync(join(work, 'outside.txt'), 'not yours');
  });

  it('lists and reads inside its directory and refuses a path outside it', async () => {
    const ops = await discover(stdio('files'));
    const byName = (n: string): OperationSpec => ops.find((o) => o.name === n)!;
    const listing = await call(stdio('files'), byName('list_directory'), { path: files });
    expect(text(listing)).toContain('notes.txt');
    const read = await call(stdio('files'), byName('read_text_file'), { path: join(files, 'notes.txt') });
    expect(text(read)).toBe('inside the allowed directory');
    const outside = await failure(call(stdio('files'), byName('read_text_file'), { path: join(work, 'outside.txt') }));
    expect(outside.failure).toBe('permanent');
    expect(outside.message).not.toContain('not yours');
  });
});

describe('mcp connector over Streamable HTTP (server-everything)', () => {
  let server: ChildProcess;
  let url: string;

  beforeAll(async () => {
    const port = await freePort();
    server = spawn(process.execPath, [everythingJs, 'streamableHttp'], { env: { PATH: process.env.PATH, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((ready, fail) => {
      let seen = '';
      server.stderr!.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes('listening')) ready();
      });
      server.once('exit', () => fail(new Error(`server-everything exited: ${seen}`)));
    });
    url = `http://127.0.0.1:${port}/mcp`;
  });
  afterAll(() => {
    server?.kill();
  });

  it('discovers and calls a tool on a loopback server the allow list names', async () => {
    const config = { transport: 'http', url };
    const ops = await discover(config, null, loopback);
    expect(ops.map((o) => o.name)).toContain('echo');
    const result = await call(config, ops.find((o) => o.name === 'echo')!, { message: 'over http' }, { type: 'bearer_token', token: 't' }, loopback);
    expect(text(result)).toBe('Echo: over http');
    expect(await driver.health({ config, credential: null, signal: AbortSignal.timeout(10_000), egress: loopback })).toEqual({ ok: true });
  });

  it('refuses a loopback server the allow list does not name', async () => {
    const e = await failure(call({ transport: 'http', url }, operationNamed('echo'), { message: 'x' }, null, noEgress));
    expect(e.failure).toBe('policy_denied');
    const health = await driver.health({ config: { transport: 'http', url }, credential: null, signal: AbortSignal.timeout(10_000), egress: noEgress });
    expect(health).toMatchObject({ ok: false, failure: 'policy_denied' });
  });

  it('refuses configurations that mix the transports', async () => {
    for (const config of [{ transport: 'http', url, command: 'everything' }, { transport: 'stdio', command: 'everything', url }, { transport: 'http' }, { transport: 'stdio' }]) {
      const e = await failure(driver.invoke({ config, credential: null, operation: operationNamed('echo'), params: {}, signal: AbortSignal.timeout(5000), egress: loopback }));
      expect(e.failure).toBe('validation_error');
    }
  });
});

describe('mcp connector over Streamable HTTP (a peer that checks its credential)', () => {
  let peer: HttpServer;
  let url: string;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    // Stateless: a fresh server and transport for each request, as the SDK shows.
    peer = createHttpServer((req, res) => {
      seen.push(req.headers);
      if (req.headers.authorization !== 'Bearer right-token' && req.headers['x-service-key'] !== 'right-key') {
        res.writeHead(401).end();
        return;
      }
      const server = new Server({ name: 'peer', version: '1' }, { capabilities: { tools: {} } });
      server.setRequestHandler(ListToolsRequestSchema, () => ({
        tools: [
          { name: 'fail', inputSchema: { type: 'object' } },
          { name: 'weather', inputSchema: { type: 'object', properties: { city: { type: 'string' } } }, annotations: { readOnlyHint: true } },
        ],
      }));
      server.setRequestHandler(CallToolRequestSchema, (request) =>
        request.params.name === 'fail'
          ? { content: [{ type: 'text', text: 'internal detail: token right-token' }], isError: true }
          : { content: [{ type: 'text', text: 'sunny' }], structuredContent: { city: request.params.arguments?.city, sky: 'sunny' } },
      );
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => void server.close());
      void server.connect(transport).then(() => transport.handleRequest(req, res));
    });
    await new Promise<void>((ready) => peer.listen(0, '127.0.0.1', ready));
    url = `http://127.0.0.1:${(peer.address() as { port: number }).port}/mcp`;
  });
  afterAll(async () => {
    await new Promise((done) => peer?.close(done));
  });

  it('sends the credential on every request and answers structured content', async () => {
    seen.length = 0;
    const config = { transport: 'http', url };
    const ops = await discover(config, { type: 'bearer_token', token: 'right-token' }, loopback);
    const weather = ops.find((o) => o.name === 'weather')!;
    expect(weather.idempotent).toBe(true);
    const result = await call(config, weather, { city: 'Lyon' }, { type: 'bearer_token', token: 'right-token' }, loopback);
    expect(result.structuredContent).toEqual({ city: 'Lyon', sky: 'sunny' });
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.every((h) => h.authorization === 'Bearer right-token')).toBe(true);
    const custom = await call(config, weather, { city: 'Brest' }, { type: 'custom_header', name: 'X-Service-Key', value: 'right-key' }, loopback);
    expect(text(custom)).toBe('sunny');
  });

  it('turns a tool error into a permanent failure without the server\'s text, and a refused credential into a permanent one', async () => {
    const config = { transport: 'http', url };
    const e = await failure(call(config, operationNamed('fail'), {}, { type: 'bearer_token', token: 'right-token' }, loopback));
    expect(e.failure).toBe('permanent');
    expect(e.message).not.toContain('right-token');
    const refused = await failure(call(config, operationNamed('weather'), {}, { type: 'bearer_token', token: 'wrong' }, loopback));
    expect(refused.failure).toBe('permanent');
    expect(refused.message).toMatch(/credential/);
  });
});

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}
