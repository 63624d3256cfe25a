import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/*
 * Agent tokens at /mcp, driven by the official MCP SDK client: an agent sees and calls only what
 * both its role and its user may, a task-bound agent names only its task, every call is audited
 * as the agent's, and a revoked token stops at once.
 */
describe.each(DB_KINDS)('agent tokens at /mcp on %s', (kind) => {
  let s: TestServer;
  let alice: { id: string; token: string };
  let taskId: string;
  let otherTaskId: string;
  const clients: Client[] = [];

  const connect = async (token: string): Promise<Client> => {
    const client = new Client({ name: 'agent-tokens-mcp-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${s.cynode.gatewayUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    clients.push(client);
    return client;
  };
  const call = async (client: Client, name: string, args: Record<string, unknown> = {}) => (await client.callTool({ name, arguments: args })) as CallToolResult;
  const agentToken = async (body: Record<string, unknown>) => {
    const res = await s.api.call('/v1/agent-tokens', { token: alice.token, body });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; token: string };
  };
  const names = async (client: Client) => (await client.listTools()).tools.map((t) => t.name).sort();

  beforeAll(async () => {
    s = await startTestServer(kind);
    alice = await s.createUser('alice');
    const task = async () => {
      const res = await s.api.call('/v1/tasks', { token: alice.token, body: { prompt: 'echo hello', input_mode: 'commands' } });
      expect(res.status, res.text).toBe(201);
      return res.body.id as string;
    };
    taskId = await task();
    otherTaskId = await task();
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await s?.close();
  });

  it('a worker sees only its role’s tools, reads its own task, and is refused anything else (audited as the agent)', async () => {
    const t = await agentToken({ role: 'worker', task_id: taskId });
    const client = await connect(t.token);
    expect(await names(client)).toEqual(['run.events', 'run.get', 'run.logs', 'task.get', 'task.result']);

    const own = await call(client, 'task.get', { task_id: taskId });
    expect(own.isError ?? false, JSON.stringify(own)).toBe(false);
    expect(own.structuredContent).toMatchObject({ task_id: taskId });

    const other = await call(client, 'task.get', { task_id: otherTaskId });
    expect(other.isError).toBe(true);
    expect(JSON.stringify(other.structuredContent)).toContain('scope_mismatch');

    const create = await call(client, 'task.create', { prompt: 'echo no', input_mode: 'commands' });
    expect(create.isError).toBe(true);
    expect(JSON.stringify(create.structuredContent)).toContain('policy_denied');

    const audit = await s.api.call(`/v1/audit/tool-calls?user_id=${alice.id}&limit=50`, { token: s.adminToken });
    expect(audit.status, audit.text).toBe(200);
    const denied = audit.body.calls.find((c: { tool_name: string }) => c.tool_name === 'task.create');
    expect(denied).toMatchObject({ decision: 'deny', subject: { type: 'agent', user_id: alice.id, agent_id: t.id, agent_role: 'worker' } });
  });

  it('a task-bound worker reads its task’s runs and no other task’s', async () => {
    const runOf = async (task: string) => {
      const res = await s.api.call(`/v1/runs?task_id=${task}`, { token: alice.token });
      expect(res.status, res.text).toBe(200);
      return res.body.runs[0].id as string;
    };
    const [own, other] = [await runOf(taskId), await runOf(otherTaskId)];
    const client = await connect((await agentToken({ role: 'worker', task_id: taskId })).token);
    for (const tool of ['run.get', 'run.events', 'run.logs']) {
      expect((await call(client, tool, { run_id: own })).isError ?? false, tool).toBe(false);
      const refused = await call(client, tool, { run_id: other });
      expect(refused.isError, tool).toBe(true);
    }
    // Its user's own key still reads both.
    const key = await s.api.call('/v1/api-keys', { token: alice.token, body: { name: 'alice-mcp' } });
    const user = await connect(key.body.key);
    expect((await call(user, 'run.get', { run_id: other })).isError ?? false).toBe(false);
  });

  it('an analyst sees only read-only tools; a project manager sees them all', async () => {
    const analyst = await connect((await agentToken({ role: 'project_analyst' })).token);
    const { tools } = await analyst.listTools();
    expect(tools.length).toBeGreaterThan(5);
    expect(tools.every((tool) => tool.annotations?.readOnlyHint === true)).toBe(true);
    expect((await call(analyst, 'task.cancel', { task_id: otherTaskId })).isError).toBe(true);

    const manager = await connect((await agentToken({ role: 'project_manager' })).token);
    const all = await names(manager);
    expect(all).toEqual(expect.arrayContaining(['task.create', 'task.cancel', 'connector.op.invoke']));
  });

  it('a user’s forbid binds their agents too', async () => {
    const rule = await s.api.call('/v1/policy/rules', {
      token: s.adminToken,
      body: { name: 'No task.cancel for alice', text: `forbid (principal == User::"${alice.id}", action == Action::"tool.call", resource == Tool::"task.cancel");` },
    });
    expect(rule.status, rule.text).toBe(201);
    const manager = await connect((await agentToken({ role: 'project_manager' })).token);
    expect(await names(manager)).not.toContain('task.cancel');
    expect((await call(manager, 'task.cancel', { task_id: otherTaskId })).isError).toBe(true);
    expect((await s.api.call(`/v1/policy/rules/${rule.body.id}`, { method: 'DELETE', token: s.adminToken })).status).toBe(204);
  });

  it('a revoked token is refused at /mcp at once; agent tokens still never reach the User API', async () => {
    const t = await agentToken({ role: 'project_manager' });
    const post = (token: string) =>
      fetch(`${s.cynode.gatewayUrl}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
    expect((await post(t.token)).status).toBe(200);
    const rest = await s.api.call('/v1/tasks', { token: t.token });
    expect(rest.status).toBe(401);
    expect(rest.body.detail).toBe('agent tokens are accepted only at /mcp');

    expect((await s.api.call(`/v1/agent-tokens/${t.id}`, { method: 'DELETE', token: alice.token })).status).toBe(204);
    const refused = await post(t.token);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
  });
});
