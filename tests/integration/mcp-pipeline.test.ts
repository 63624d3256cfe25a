import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityServices } from '../../server/app';
import { HttpProblem } from '../../server/http/problem';
import type { McpCaller } from '../../server/mcp/caller';
import { defineTool } from '../../server/mcp/catalog';
import { McpService } from '../../server/mcp/service';
import { PolicyService } from '../../server/policy/service';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/*
 * The pipeline every tools/call goes through, with the caller an agent acting for a user (the
 * shape agent-scoped tokens resolve to): the agent's role is decided with its user, a task-bound
 * agent names only its task, a tool that hangs answers `timeout`, one that crashes answers
 * `internal` without its message, and each lands in the tool-call audit with its subject.
 */
describe.each(DB_KINDS)('the MCP tool pipeline on %s', (kind) => {
  let s: TestServer;
  let policy: PolicyService;
  let stopPolicy: () => Promise<void>;
  let mcp: McpService;
  let alice: { id: string; token: string };
  const TASK = '11111111-1111-4111-8111-111111111111';
  const OTHER_TASK = '22222222-2222-4222-8222-222222222222';
  const ctx = { requestId: 'pipeline-test', ip: '127.0.0.1', userAgent: 'vitest' };
  const tools = [
    defineTool({
      name: 'demo.read',
      title: 'Read',
      description: 'Answers its task',
      input: Type.Object({ task_id: Type.String() }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args) => ({ task_id: args.task_id }),
    }),
    defineTool({
      name: 'demo.write',
      title: 'Write',
      description: 'Changes something',
      input: Type.Object({}, { additionalProperties: false }),
      readOnly: false,
      destructive: false,
      idempotent: false,
      openWorld: false,
      run: async () => ({ done: true }),
    }),
    defineTool({
      name: 'demo.hang',
      title: 'Hang',
      description: 'Never answers',
      input: Type.Object({}, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: (_args, { signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
    }),
    defineTool({
      name: 'demo.crash',
      title: 'Crash',
      description: 'Fails with an internal error',
      input: Type.Object({}, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async () => {
        throw new Error('connection string postgres://user:hunter2@db');
      },
    }),
    defineTool({
      name: 'demo.refuse',
      title: 'Refuse',
      description: 'Refused by its service',
      input: Type.Object({}, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async () => {
        throw new HttpProblem(409, 'The thing is busy');
      },
    }),
  ];

  const agent = (taskId?: string): McpCaller => ({
    principal: { userId: alice.id, handle: 'alice', via: 'api_key' },
    agent: { id: 'agent-7', role: 'worker', ...(taskId ? { taskId } : {}) },
  });
  const audit = async (tool: string) => (await s.api.call(`/v1/audit/tool-calls?tool_name=${tool}&limit=1`, { token: s.adminToken })).body.calls[0];

  beforeAll(async () => {
    s = await startTestServer(kind);
    alice = await s.createUser('alice');
    const authz = identityServices(s.cynode.db, join(s.config.dataDir, 'unused')).authz;
    policy = new PolicyService(s.cynode.db, authz);
    stopPolicy = await policy.start();
    mcp = new McpService(s.cynode.db, authz, policy, tools, { toolTimeoutMs: 300 });
    // Agents with the worker role may call read-only tools (their users' rights still apply).
    const rule = await s.api.call('/v1/policy/rules', {
      token: s.adminToken,
      body: { name: 'workers read', text: 'permit (principal is Agent in Role::"worker", action == Action::"tool.call", resource is Tool) when { resource.readOnly };' },
    });
    expect(rule.status, rule.text).toBe(201);
    await policy.reload();
  });
  afterAll(async () => {
    await stopPolicy?.();
    await s?.close();
  });

  it('lists to an agent only what both its role and its user may call', async () => {
    const names = (await mcp.listTools(agent(), ctx)).map((t) => t.name);
    expect(names).toEqual(['demo.read', 'demo.hang', 'demo.crash', 'demo.refuse']);
    const user = (await mcp.listTools({ principal: agent().principal }, ctx)).map((t) => t.name);
    expect(user).toContain('demo.write');
    const refused = await mcp.callTool(agent(), 'demo.write', {}, ctx);
    expect(refused).toEqual({ ok: false, error: { type: 'policy_denied', message: expect.any(String) } });
    expect(await audit('demo.write')).toMatchObject({ decision: 'deny', subject: { type: 'agent', user_id: alice.id, agent_id: 'agent-7', agent_role: 'worker' } });
  });

  it('lets a task-bound agent name its own task only', async () => {
    expect(await mcp.callTool(agent(TASK), 'demo.read', { task_id: TASK }, ctx)).toEqual({ ok: true, result: { task_id: TASK } });
    const other = await mcp.callTool(agent(TASK), 'demo.read', { task_id: OTHER_TASK }, ctx);
    expect(other).toMatchObject({ ok: false, error: { type: 'scope_mismatch' } });
    expect(await audit('demo.read')).toMatchObject({ decision: 'deny', status: 'error', error_type: 'scope_mismatch', task_id: OTHER_TASK, args_shape: { task_id: 'string' } });
  });

  it('answers timeout for a tool past its time, internal without the message for a crash, and a service refusal by its kind', async () => {
    expect(await mcp.callTool(agent(), 'demo.hang', {}, ctx)).toMatchObject({ ok: false, error: { type: 'timeout' } });
    const crash = await mcp.callTool(agent(), 'demo.crash', {}, ctx);
    expect(crash).toMatchObject({ ok: false, error: { type: 'internal' } });
    expect(JSON.stringify(crash)).not.toContain('hunter2');
    expect(await mcp.callTool(agent(), 'demo.refuse', {}, ctx)).toEqual({ ok: false, error: { type: 'conflict', message: 'The thing is busy' } });
    expect(await audit('demo.hang')).toMatchObject({ decision: 'allow', status: 'error', error_type: 'timeout' });
    expect(await audit('demo.crash')).toMatchObject({ decision: 'allow', status: 'error', error_type: 'internal' });
  });

  it('refuses arguments that are not an object, and audits an unknown tool as a deny', async () => {
    expect(await mcp.callTool(agent(), 'demo.read', ['x'], ctx)).toMatchObject({ ok: false, error: { type: 'invalid_arguments' } });
    expect(await mcp.callTool(agent(), 'demo.read', { task_id: 'a\u0000b' }, ctx)).toMatchObject({ ok: false, error: { type: 'invalid_arguments' } });
    expect(await mcp.callTool(agent(), 'demo.nothing', {}, ctx)).toMatchObject({ ok: false, error: { type: 'unknown_tool' } });
    expect(await audit('demo.nothing')).toMatchObject({ decision: 'deny', error_type: 'unknown_tool', policy_audit_id: null });
  });
});
