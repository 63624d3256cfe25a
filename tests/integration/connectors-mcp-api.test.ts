import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type ApiResponse, type TestServer } from '../support/harness';

// The mcp connector type through the API end to end: the gateway seals each instance's
// credential for the executor process, which discovers the MCP server's tools with it, keeps
// them per instance, and starts the server (the reference server-everything from npm) with that
// instance's credential in its environment and nothing else of CyNode's.

const servers = resolve('node_modules/@modelcontextprotocol');
const everythingJs = join(servers, 'server-everything/dist/index.js');
const work = mkdtempSync(join(tmpdir(), 'cynode-mcp-api-'));
const files = join(work, 'files');

const SECRET_A = 'mcp-alpha-secret-4f1c9e2a7b63d0';
const SECRET_B = 'mcp-bravo-secret-8e2d5a91c07f4b';
// In the server's environment: the executor must keep it from every MCP server it starts.
const SERVER_CANARY = 'cynode-canary-7a3e11d94c';

// The SDK's inherited basics, and the one variable the administrator named for the credential.
const ALLOWED_ENV = ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'API_KEY'];

const saved = { commands: process.env.CYNODE_MCP_COMMANDS, canary: process.env.CYNODE_TEST_CANARY };
beforeAll(() => {
  // Read by the gateway (install checks) and by the executor it forks (which server to start).
  process.env.CYNODE_MCP_COMMANDS = JSON.stringify({
    everything: { argv: [process.execPath, everythingJs, 'stdio'], credential_env: 'API_KEY' },
    'everything-args': { argv: [process.execPath, everythingJs], allow_args: true },
    memory: { argv: [process.execPath, join(servers, 'server-memory/dist/index.js')], env: { MEMORY_FILE_PATH: join(work, 'memory.jsonl') } },
    files: [process.execPath, join(servers, 'server-filesystem/dist/index.js'), files],
  });
  process.env.CYNODE_TEST_CANARY = SERVER_CANARY;
  mkdirSync(files, { recursive: true });
  writeFileSync(join(files, 'notes.txt'), 'inside the allowed directory');
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  for (const [name, value] of [
    ['CYNODE_MCP_COMMANDS', saved.commands],
    ['CYNODE_TEST_CANARY', saved.canary],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

// server-everything over Streamable HTTP on loopback, for the remote variant.
let remote: ChildProcess;
let remoteUrl: string;
beforeAll(async () => {
  const port = await freePort();
  remote = spawn(process.execPath, [everythingJs, 'streamableHttp'], { env: { PATH: process.env.PATH, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((ready, fail) => {
    let seen = '';
    remote.stderr!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('listening')) ready();
    });
    remote.once('exit', () => fail(new Error(`server-everything exited: ${seen}`)));
  });
  remoteUrl = `http://127.0.0.1:${port}/mcp`;
});
afterAll(() => {
  remote?.kill();
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

type Content = { content: { type: string; text?: string }[] };
const textOf = (result: Content): string => result.content.map((c) => c.text ?? '').join('');

describe.each(DB_KINDS)('mcp connectors through the API on %s', (kind) => {
  let s: TestServer;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  const answers: ApiResponse[] = [];
  const call = async (method: string, path: string, body?: unknown, token = alice.token) => {
    const res = await s.api.call(path, { method, token, body });
    answers.push(res);
    return res;
  };
  const invoke = (id: string, op: string, params: Record<string, unknown>, token = alice.token) => call('POST', `/v1/connectors/${id}/operations/${op}`, { params }, token);

  async function install(name: string, config: Record<string, unknown>, token = alice.token) {
    return call('POST', '/v1/connectors', { type: 'mcp', name, config }, token);
  }

  async function mcpWithSecret(name: string, key: string): Promise<string> {
    const created = await install(name, { transport: 'stdio', command: 'everything' });
    expect(created.status, created.text).toBe(201);
    const credential = await call('POST', `/v1/connectors/${created.body.id}/credentials`, { type: 'api_key', secret: { key } });
    expect(credential.status, credential.text).toBe(201);
    return created.body.id as string;
  }

  let a: string;
  let b: string;

  /** get-env run by the executor with the instance's stored credential: what its server process holds, unredacted. */
  async function serverEnv(id: string): Promise<Record<string, string>> {
    const [row] = await s.cynode.db.query<{ id: string; version: number; jwe: string }>(
      "SELECT id, version, jwe FROM connector_credentials WHERE instance_id = $1 AND status = 'active'",
      [id],
    );
    const outcome = await s.cynode.connectorExecutor.invoke({
      requestId: `test-${id}`,
      instanceId: id,
      type: 'mcp',
      config: { transport: 'stdio', command: 'everything' },
      credential: { instanceId: id, credentialId: row!.id, version: row!.version, jwe: row!.jwe },
      operation: 'get-env',
      params: {},
      timeoutMs: 60_000,
      egressAllow: [],
    });
    expect(outcome.ok).toBe(true);
    return JSON.parse(textOf((outcome as { result: Content }).result)) as Record<string, string>;
  }

  beforeAll(async () => {
    s = await startTestServer(kind);
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
    a = await mcpWithSecret('Everything A', SECRET_A);
    b = await mcpWithSecret('Everything B', SECRET_B);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses at install a stdio command that is not on the approved list, and arguments it does not allow', async () => {
    for (const config of [
      { transport: 'stdio', command: 'not-approved' },
      { transport: 'stdio', command: 'everything', args: ['streamableHttp'] },
      { transport: 'stdio', command: 'everything', url: 'http://127.0.0.1:1/mcp' },
    ]) {
      const res = await install('Refused', config);
      expect(res.status, res.text).toBe(400);
      expect(res.body).toMatchObject({ status: 400, code: 'validation_error' });
    }
    expect((await install('Refused', { transport: 'stdio', command: 'not-approved' })).body.detail).toMatch(/approved list/);
    // The same check when the configuration changes.
    const patched = await call('PATCH', `/v1/connectors/${a}`, { config: { transport: 'stdio', command: 'not-approved' } });
    expect(patched.status).toBe(400);
    const ok = await install('With args', { transport: 'stdio', command: 'everything-args', args: ['stdio'] });
    expect(ok.status, ok.text).toBe(201);
  });

  it('marks the type as discovering its operations, and lists an instance\'s tools with their schemas', async () => {
    const types = await call('GET', '/v1/connectors/catalog');
    const mcp = types.body.types.find((t: { type: string }) => t.type === 'mcp');
    expect(mcp).toMatchObject({ operations_discovered: true, operations: [] });
    expect(types.body.types.find((t: { type: string }) => t.type === 'http')).toMatchObject({ operations_discovered: false });

    const listed = await call('GET', `/v1/connectors/${a}/operations/catalog`);
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body.discovered).toBe(true);
    const names = listed.body.operations.map((o: { name: string }) => o.name);
    expect(names).toEqual(expect.arrayContaining(['echo', 'get-env', 'get-sum']));
    expect(listed.body.operations.find((o: { name: string }) => o.name === 'echo')).toMatchObject({
      request_schema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
      timeout_ms: 60_000,
      idempotent: true,
    });
    // A declared type answers its own operations.
    const http = await call('POST', '/v1/connectors', { type: 'http', name: 'Web', config: { base_url: 'http://127.0.0.1:9/api' } });
    const declared = await call('GET', `/v1/connectors/${http.body.id}/operations/catalog`);
    expect(declared.body).toMatchObject({ discovered: false, operations: [{ name: 'request' }] });
    // Another user's instance does not exist for them.
    expect((await call('GET', `/v1/connectors/${a}/operations/catalog`, undefined, bob.token)).status).toBe(404);
    // Listing starts the server with the owner's credential: an admin who sees the instance
    // needs connector.manage for it, as for enabling it.
    expect((await call('GET', `/v1/connectors/${a}/operations/catalog`, undefined, s.adminToken)).status).toBe(200);
    const forbid = await call('POST', '/v1/policy/rules', { name: 'no-manage', text: 'forbid (principal, action == Action::"connector.manage", resource is Connector);' }, s.adminToken);
    expect(forbid.status, forbid.text).toBe(201);
    const refused = await call('GET', `/v1/connectors/${a}/operations/catalog`, undefined, s.adminToken);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'policy_denied' });
    expect((await call('DELETE', `/v1/policy/rules/${forbid.body.id}`, undefined, s.adminToken)).status).toBe(204);
  });

  it('runs a tool: each server sees its own instance\'s secret only, and none of CyNode\'s environment', async () => {
    const [ra, rb] = await Promise.all([invoke(a, 'get-env', {}), invoke(b, 'get-env', {})]);
    for (const [res, own, other] of [
      [ra, SECRET_A, SECRET_B],
      [rb, SECRET_B, SECRET_A],
    ] as const) {
      expect(res.status, res.text).toBe(200);
      const env = JSON.parse(textOf(res.body.result as Content)) as Record<string, string>;
      // The server had a credential in API_KEY; the gateway redacts it before answering.
      expect(env.API_KEY).toBeDefined();
      expect(res.text).not.toContain(own);
      expect(res.text).not.toContain(other);
      expect(res.text).not.toContain(SERVER_CANARY);
      expect(Object.keys(env).filter((k) => k.startsWith('CYNODE_'))).toEqual([]);
      expect(Object.keys(env).filter((k) => !ALLOWED_ENV.includes(k))).toEqual([]);
    }

    // What each server process really held, as the executor received it before redaction: its
    // own instance's secret, never the other's.
    for (const [id, own, other] of [
      [a, SECRET_A, SECRET_B],
      [b, SECRET_B, SECRET_A],
    ] as const) {
      const env = await serverEnv(id);
      expect(env.API_KEY).toBe(own);
      expect(JSON.stringify(env)).not.toContain(other);
      expect(JSON.stringify(env)).not.toContain(SERVER_CANARY);
    }
  });

  it('answers a tool\'s result, 400 validation_error for arguments that fail its schema, 404 for an unknown tool', async () => {
    const echo = await invoke(a, 'echo', { message: 'hello through CyNode' });
    expect(echo.status, echo.text).toBe(200);
    expect(textOf(echo.body.result)).toBe('Echo: hello through CyNode');

    for (const params of [{ message: 987654321 }, {}]) {
      const bad = await invoke(a, 'echo', params);
      expect(bad.status, bad.text).toBe(400);
      expect(bad.body).toMatchObject({ status: 400, code: 'validation_error', detail: expect.stringMatching(/parameters are not valid/) });
      expect(bad.text).not.toContain('987654321');
    }
    const sum = await invoke(a, 'get-sum', { a: 'two', b: 40 });
    expect(sum.status).toBe(400);

    const unknown = await invoke(a, 'no-such-tool', {});
    expect(unknown.status, unknown.text).toBe(404);
    expect(unknown.body).toMatchObject({ status: 404 });
  });

  it('records every call in the instance\'s history, each pointing at its access decision', async () => {
    const res = await call('GET', `/v1/connectors/${a}/operations?limit=50`);
    expect(res.status).toBe(200);
    const rows = res.body.operations as { operation: string; outcome: string; failure_class: string | null; decision: string; decision_audit_id: string | null; credential_version: number | null }[];
    const of = (op: string) => rows.filter((r) => r.operation === op);
    expect(of('get-env').filter((r) => r.outcome === 'success')).toHaveLength(1);
    expect(of('get-env')[0]).toMatchObject({ decision: 'allow', credential_version: 1, decision_audit_id: expect.any(String) });
    expect(of('echo').filter((r) => r.outcome === 'success')).toHaveLength(1);
    expect(of('echo').filter((r) => r.outcome === 'failure' && r.failure_class === 'validation_error')).toHaveLength(2);
    expect(of('no-such-tool')).toMatchObject([{ decision: 'allow', outcome: 'failure', failure_class: 'validation_error' }]);
    expect(JSON.stringify(rows)).not.toContain(SECRET_A);
  });

  it('runs with the rotated credential once it is rotated (the executor discovers again for the new version)', async () => {
    const [cred] = (await call('GET', `/v1/connectors/${b}/credentials`)).body.credentials as { id: string }[];
    const rotated = await call('POST', `/v1/connectors/${b}/credentials/${cred!.id}/rotate`, { secret: { key: `${SECRET_B}-v2` } });
    expect(rotated.status, rotated.text).toBe(200);
    const echo = await invoke(b, 'echo', { message: 'after rotation' });
    expect(echo.status, echo.text).toBe(200);
    const [row] = await s.cynode.db.query<{ credential_version: number }>(
      'SELECT credential_version FROM connector_operations WHERE instance_id = $1 AND outcome = $2 ORDER BY seq DESC LIMIT 1',
      [b, 'success'],
    );
    expect(row!.credential_version).toBe(2);
    expect((await serverEnv(b)).API_KEY).toBe(`${SECRET_B}-v2`);
  });

  it('starts no server for a disabled instance, and refuses a caller the policy does not allow', async () => {
    const disabled = await call('POST', `/v1/connectors/${b}/disable`);
    expect(disabled.status).toBe(200);
    expect((await call('GET', `/v1/connectors/${b}/operations/catalog`)).status).toBe(409);
    expect((await invoke(b, 'echo', { message: 'x' })).status).toBe(409);
    // An admin sees every instance but, by the default rules, may not run another user's tools.
    const denied = await invoke(a, 'echo', { message: 'x' }, s.adminToken);
    expect(denied.status, denied.text).toBe(403);
    expect(denied.body).toMatchObject({ code: 'policy_denied' });
  });

  it('runs the other reference servers: server-memory keeps an entity, server-filesystem reads inside its directory only', async () => {
    const memory = await install('Memory', { transport: 'stdio', command: 'memory' });
    expect(memory.status, memory.text).toBe(201);
    const created = await invoke(memory.body.id, 'create_entities', { entities: [{ name: 'CyNode', entityType: 'project', observations: ['orchestrates models'] }] });
    expect(created.status, created.text).toBe(200);
    const graph = await invoke(memory.body.id, 'read_graph', {});
    expect(graph.status, graph.text).toBe(200);
    expect(graph.body.result.structuredContent).toMatchObject({ entities: [{ name: 'CyNode', observations: ['orchestrates models'] }] });

    const fs = await install('Files', { transport: 'stdio', command: 'files' });
    const read = await invoke(fs.body.id, 'read_text_file', { path: join(files, 'notes.txt') });
    expect(read.status, read.text).toBe(200);
    expect(textOf(read.body.result)).toBe('inside the allowed directory');
    const outside = await invoke(fs.body.id, 'read_text_file', { path: '/etc/hostname' });
    expect(outside.status).toBe(502);
    expect(outside.body).toMatchObject({ code: 'permanent' });
  });

  it('reaches a Streamable HTTP server once an admin allows its address', async () => {
    const created = await install('Remote', { transport: 'http', url: remoteUrl });
    expect(created.status, created.text).toBe(201);
    // Loopback is refused until allowed: discovery is refused by the egress check.
    const refused = await call('GET', `/v1/connectors/${created.body.id}/operations/catalog`);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.body).toMatchObject({ code: 'policy_denied' });
    expect((await call('PUT', '/v1/connectors/egress-allow', { entries: ['127.0.0.1'] }, s.adminToken)).status).toBe(200);
    const listed = await call('GET', `/v1/connectors/${created.body.id}/operations/catalog`);
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body.operations.map((o: { name: string }) => o.name)).toContain('echo');
    const echo = await invoke(created.body.id, 'echo', { message: 'over http' });
    expect(echo.status, echo.text).toBe(200);
    expect(textOf(echo.body.result)).toBe('Echo: over http');
    expect((await call('PUT', '/v1/connectors/egress-allow', { entries: [] }, s.adminToken)).status).toBe(200);
  });

  it('never answers a stored secret', () => {
    for (const res of answers) {
      for (const secret of [SECRET_A, SECRET_B, `${SECRET_B}-v2`, SERVER_CANARY]) expect(res.text).not.toContain(secret);
    }
  });
});
