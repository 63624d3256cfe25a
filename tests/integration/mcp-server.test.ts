import { request as httpRequest } from 'node:http';
import { rm } from 'node:fs/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeManager } from '../../node-manager/agent/node-manager';
import { ensureSandboxImage } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startTestNode } from '../support/nodes';
import { until } from '../support/until';

/*
 * CyNode as an MCP server, driven by the official MCP SDK client over Streamable HTTP with an API
 * key: the tools a caller may use, a task run in a real sandbox, a forbid rule hiding and refusing
 * a tool, the HTTP guards of /mcp (credential, Host, Origin, methods), and the tool-call audit.
 */
describe.each(DB_KINDS)('the MCP server at /mcp on %s', (kind) => {
  let s: TestServer;
  let node: NodeManager;
  let stateDir: string;
  let adminKey: string;
  let bob: { id: string; token: string };
  const clients: Client[] = [];

  const connect = async (token: string): Promise<Client> => {
    const client = new Client({ name: 'mcp-server-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${s.cynode.gatewayUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    clients.push(client);
    return client;
  };
  const call = async (client: Client, name: string, args: Record<string, unknown> = {}) => (await client.callTool({ name, arguments: args })) as CallToolResult;
  const auditOf = async (query: string, token = s.adminToken) => s.api.call(`/v1/audit/tool-calls?${query}`, { token });

  beforeAll(async () => {
    await ensureSandboxImage();
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1 });
    ({ node, stateDir } = await startTestNode(s, `mcp-${kind}`, { inferenceMode: 'disabled' }));
    const key = await s.api.call('/v1/api-keys', { token: s.adminToken, body: { name: 'editor' } });
    expect(key.status, key.text).toBe(201);
    adminKey = key.body.key;
    bob = await s.createUser('bob');
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await node?.close();
    await s?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('lists every tool of the catalog for an API key, with JSON Schema inputs and read-only hints', async () => {
    const client = await connect(adminKey);
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const name of ['task.create', 'task.get', 'task.list', 'task.cancel', 'task.result', 'run.list', 'run.get', 'run.events', 'run.logs', 'session.list', 'session.get', 'project.list', 'project.get', 'node.list', 'node.get', 'model.list', 'model.get', 'process.list', 'process.get', 'process.start', 'process.stop', 'connector.catalog.list', 'connector.instance.list', 'connector.op.invoke']) {
      expect(byName.has(name), name).toBe(true);
    }
    expect(byName.get('task.get')!.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
    expect(byName.get('task.create')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    expect(byName.get('task.cancel')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(byName.get('connector.op.invoke')!.annotations).toMatchObject({ readOnlyHint: false, openWorldHint: true });
    expect(byName.get('task.create')!.inputSchema).toMatchObject({ type: 'object', required: ['prompt'] });
  });

  it('creates a task that runs `echo hello` in a real sandbox and reads its result through the tools', async () => {
    const client = await connect(adminKey);
    const created = await call(client, 'task.create', { prompt: 'echo hello', input_mode: 'commands' });
    expect(created.isError ?? false, JSON.stringify(created)).toBe(false);
    const task = created.structuredContent as { task_id: string; status: string };
    expect(task).toMatchObject({ task_id: expect.any(String), input_mode: 'commands' });
    // The text copy carries the same JSON for clients that only read text.
    expect(JSON.parse((created.content[0] as { text: string }).text)).toEqual(task);

    const result = await until('the task to complete', async () => {
      const r = (await call(client, 'task.result', { task_id: task.task_id })).structuredContent as { status: string; stdout: string; exit_code: number | null };
      return r.status === 'completed' || r.status === 'failed' ? r : undefined;
    });
    expect(result).toMatchObject({ status: 'completed', exit_code: 0 });
    expect(result.stdout).toContain('hello');

    const listed = (await call(client, 'task.list', { limit: 5 })).structuredContent as { tasks: Array<{ task_id: string }> };
    expect(listed.tasks.map((t) => t.task_id)).toContain(task.task_id);
    const got = (await call(client, 'task.get', { task_id: task.task_id })).structuredContent;
    expect(got).toMatchObject({ task_id: task.task_id, status: 'completed' });
  });

  it('refuses bad arguments and unknown tools as tool errors with a type and a message, never a stack', async () => {
    const client = await connect(adminKey);
    const bad = await call(client, 'task.get', { task_id: 42 });
    expect(bad.isError).toBe(true);
    expect(bad.structuredContent).toMatchObject({ type: 'invalid_arguments', message: expect.stringContaining('task_id') });
    const extra = await call(client, 'task.list', { colour: 'red' });
    expect(extra.structuredContent).toMatchObject({ type: 'invalid_arguments' });
    const missing = await call(client, 'task.get', { task_id: '00000000-0000-4000-8000-000000000000' });
    expect(missing).toMatchObject({ isError: true, structuredContent: { type: 'not_found' } });
    const unknown = await call(client, 'sandbox.exec', { command: 'id' });
    expect(unknown).toMatchObject({ isError: true, structuredContent: { type: 'unknown_tool' } });
    expect(JSON.stringify([bad, extra, missing, unknown])).not.toMatch(/at .*\.ts:\d+/);
  });

  it('keeps a non-admin out of admin tools through the same RBAC as REST', async () => {
    const client = await connect(bob.token);
    const nodes = await call(client, 'node.list');
    expect(nodes).toMatchObject({ isError: true, structuredContent: { type: 'forbidden' } });
    const projects = (await call(client, 'project.list')).structuredContent as { projects: Array<{ slug: string }> };
    expect(projects.projects.length).toBeGreaterThan(0);
  });

  it('hides a forbidden tool from tools/list, refuses it, and audits the refusal as a deny', async () => {
    const rule = await s.api.call('/v1/policy/rules', {
      token: s.adminToken,
      body: { name: 'no connector calls for bob', text: `forbid (principal == User::"${bob.id}", action == Action::"tool.call", resource == Tool::"connector.op.invoke");` },
    });
    expect(rule.status, rule.text).toBe(201);

    const client = await connect(bob.token);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).not.toContain('connector.op.invoke');
    expect(names).toContain('task.get');

    const refused = await call(client, 'connector.op.invoke', { connector_id: '00000000-0000-4000-8000-000000000001', operation: 'request', params: { path: 'secret-path-value' } });
    expect(refused).toMatchObject({ isError: true, structuredContent: { type: 'policy_denied' } });

    const audit = await auditOf('tool_name=connector.op.invoke&decision=deny');
    expect(audit.status, audit.text).toBe(200);
    expect(audit.body.calls[0]).toMatchObject({
      tool_name: 'connector.op.invoke',
      decision: 'deny',
      status: 'error',
      error_type: 'policy_denied',
      subject: { type: 'user', user_id: bob.id, agent_id: null },
      policy_audit_id: expect.any(String),
      args_shape: { connector_id: 'string', operation: 'string', params: 'object' },
    });
    // The access audit names the forbid rule that decided.
    const decision = await s.api.call(`/v1/audit/access?action=tool.call&subject=${bob.id}&decision=deny`, { token: s.adminToken });
    expect(decision.body.decisions[0]).toMatchObject({ resource: { type: 'Tool', id: 'connector.op.invoke' }, rules: [rule.body.id] });

    // The explain endpoint answers the same for the new action.
    const explained = await s.api.call('/v1/policy/explain', { token: s.adminToken, body: { subject: { user_id: bob.id }, action: 'tool.call', resource: { type: 'Tool', id: 'connector.op.invoke', read_only: false } } });
    expect(explained.status, explained.text).toBe(200);
    expect(explained.body).toMatchObject({ decision: 'deny', rules: [rule.body.id] });
    const allowed = await s.api.call('/v1/policy/explain', { token: s.adminToken, body: { subject: { user_id: bob.id }, action: 'tool.call', resource: { type: 'Tool', id: 'task.get', read_only: true } } });
    expect(allowed.body).toMatchObject({ decision: 'allow', rules: ['default-tool-call'] });
  });

  it('writes every call to the tool-call audit with argument names and types, never their values', async () => {
    const client = await connect(adminKey);
    const marker = 'audit-marker-7f3e9a';
    const before = (await auditOf('limit=200')).body.calls.length as number;
    await call(client, 'task.list', { limit: 3 });
    await call(client, 'project.get', { project_id: marker });
    await call(client, 'task.create', { prompt: `echo ${marker}`, input_mode: 'commands', task_name: marker });
    const res = await auditOf('limit=200');
    expect(res.status, res.text).toBe(200);
    expect(res.body.calls.length).toBe(before + 3);
    const [created, project, listed] = res.body.calls;
    expect(listed).toMatchObject({ tool_name: 'task.list', decision: 'allow', status: 'success', args_shape: { limit: 'number' }, duration_ms: expect.any(Number) });
    expect(project).toMatchObject({ tool_name: 'project.get', decision: 'allow', status: 'error', error_type: 'not_found', args_shape: { project_id: 'string' } });
    expect(created).toMatchObject({ tool_name: 'task.create', status: 'success', task_id: expect.any(String), args_shape: { prompt: 'string', input_mode: 'string', task_name: 'string' } });
    expect(res.text).not.toContain(marker);
    // Filters: by tool and by task.
    const byTool = await auditOf('tool_name=task.create&limit=1');
    expect(byTool.body.calls).toHaveLength(1);
    expect(byTool.body.next_cursor).toEqual(expect.any(String));
    expect((await auditOf(`task_id=${created.task_id}`)).body.calls.map((c: { id: string }) => c.id)).toEqual([created.id]);
  });

  it('lets only admins read the tool-call audit', async () => {
    const res = await auditOf('limit=5', bob.token);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('starts, reads and stops a background process in a task sandbox, then cancels the task', async () => {
    const client = await connect(adminKey);
    const task = (await call(client, 'task.create', { prompt: 'sleep 60', input_mode: 'commands' })).structuredContent as { task_id: string };
    const run = await until('the task run to be running', async () => {
      const page = (await call(client, 'run.list', { task_id: task.task_id })).structuredContent as { runs: Array<{ id: string; status: string }> };
      return page.runs[0]?.status === 'running' ? page.runs[0] : undefined;
    });
    const started = await call(client, 'process.start', { run_id: run.id, command: ['sh', '-c', 'echo from-mcp; sleep 60'] });
    expect(started.isError ?? false, JSON.stringify(started)).toBe(false);
    const { process_id } = started.structuredContent as { process_id: string };
    const get = async () => (await call(client, 'process.get', { run_id: run.id, process_id })).structuredContent as { status: string; stdout: string };
    const live = await until('the process output', async () => {
      const p = await get();
      return p.stdout.includes('from-mcp') ? p : undefined;
    });
    expect(live.status).toBe('running');
    const listed = (await call(client, 'process.list', { run_id: run.id })).structuredContent as { processes: Array<{ process_id: string }> };
    expect(listed.processes.map((p) => p.process_id)).toContain(process_id);

    expect((await call(client, 'process.stop', { run_id: run.id, process_id })).structuredContent).toMatchObject({ process_id });
    await until('the process to be terminated', async () => (await get()).status === 'terminated');
    expect((await call(client, 'task.cancel', { task_id: task.task_id })).structuredContent).toEqual({ task_id: task.task_id, task_name: expect.any(String), canceled: true });
    const events = (await call(client, 'run.events', { run_id: run.id, after: 0, limit: 500 })).structuredContent as { items: Array<{ kind: string }> };
    expect(events.items.map((e) => e.kind)).toContain('process');
  });

  describe('HTTP guards', () => {
    const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
    const post = (headers: Record<string, string>) =>
      fetch(`${s.cynode.gatewayUrl}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body: JSON.stringify(initialize) });

    it('answers 401 with a Bearer challenge without a valid credential, and the SDK client fails to connect', async () => {
      const none = await post({});
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await post({ authorization: 'Bearer not-a-key' })).status).toBe(401);
      const client = new Client({ name: 'anonymous', version: '1' });
      await expect(client.connect(new StreamableHTTPClientTransport(new URL(`${s.cynode.gatewayUrl}/mcp`)))).rejects.toThrow();
    });

    it('answers the initialize handshake for a valid key', async () => {
      const res = await post({ authorization: `Bearer ${adminKey}`, 'x-request-id': 'mcp-handshake-1' });
      expect(res.status).toBe(200);
      // The gateway's headers reach an answer the MCP transport wrote.
      expect(res.headers.get('x-request-id')).toBe('mcp-handshake-1');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'cynode' }, capabilities: { tools: {} } } });
    });

    it('refuses a Host this gateway does not serve (DNS rebinding) with 403', async () => {
      const url = new URL(`${s.cynode.gatewayUrl}/mcp`);
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          { host: url.hostname, port: url.port, path: '/mcp', method: 'POST', headers: { host: 'attacker.example', 'content-type': 'application/json', authorization: `Bearer ${adminKey}` } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(initialize));
      });
      expect(status).toBe(403);
    });

    it('refuses an Origin from elsewhere with 403, and accepts its own', async () => {
      expect((await post({ authorization: `Bearer ${adminKey}`, origin: 'http://attacker.example' })).status).toBe(403);
      expect((await post({ authorization: `Bearer ${adminKey}`, origin: s.cynode.gatewayUrl })).status).toBe(200);
    });

    it('answers malformed requests with 4xx, never 5xx', async () => {
      const send = (body: string, headers: Record<string, string> = {}) =>
        fetch(`${s.cynode.gatewayUrl}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body });
      for (const body of ['{}', '[]', '{"jsonrpc":"2.0"}', 'not json', '"text"', '[1,2]']) {
        const res = await send(body);
        expect(res.status, body).toBeGreaterThanOrEqual(400);
        expect(res.status, body).toBeLessThan(500);
      }
      // A tools/call with missing params is a JSON-RPC error, not a crash.
      const call = await send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { arguments: {} } }));
      expect(call.status).toBeLessThan(500);
      expect(await call.json()).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: expect.any(Number) } });
      expect((await send(JSON.stringify(initialize), { 'content-type': 'text/plain' })).status).toBe(415);
      expect((await send(JSON.stringify(initialize), { accept: 'text/html' })).status).toBe(406);
    });

    it('answers GET and DELETE with 405', async () => {
      for (const method of ['GET', 'DELETE']) {
        const res = await fetch(`${s.cynode.gatewayUrl}/mcp`, { method, headers: { authorization: `Bearer ${adminKey}`, accept: 'text/event-stream' } });
        expect(res.status, method).toBe(405);
        expect(res.headers.get('allow')).toBe('POST');
      }
    });
  });
});
