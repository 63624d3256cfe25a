import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentPmSettings } from '../../server/preferences/keys';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

const UNKNOWN = '00000000-0000-4000-8000-000000000000';
const GITHUB_TOKEN = 'ghp_8Zk2Lq9Xw4Vb7Nc1Rt5Ym3Hs6Jd0Fg2Pa4Eo';

describe.each(DB_KINDS)('preferences on %s', (kind) => {
  let s: TestServer;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  let groupId: string;
  let projectId: string;
  let taskId: string;
  const clients: Client[] = [];

  const call = (method: string, path: string, body?: unknown, token = s.adminToken) => s.api.call(path, { method, token, body });
  const put = (key: string, body: Record<string, unknown>, token = s.adminToken) => call('PUT', `/v1/prefs/${key}`, body, token);

  beforeAll(async () => {
    s = await startTestServer(kind);
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
    const group = await call('POST', '/v1/groups', { slug: 'planners', display_name: 'Planners' });
    groupId = group.body.id;
    expect((await call('POST', `/v1/groups/${groupId}/members`, { user_id: alice.id })).status).toBe(201);
    const project = await call('POST', '/v1/projects', { slug: 'apollo', display_name: 'Apollo' }, alice.token);
    projectId = project.body.id;
    const task = await call('POST', '/v1/tasks', { prompt: 'echo hi', input_mode: 'commands', project_id: projectId }, alice.token);
    expect(task.status, task.text).toBe(201);
    taskId = task.body.id;
  });
  const connect = async (token: string): Promise<Client> => {
    const client = new Client({ name: 'preferences-test', version: '1.0.0' });
    clients.push(client);
    await client.connect(new StreamableHTTPClientTransport(new URL(`${s.cynode.gatewayUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    return client;
  };
  const tool = async (client: Client, name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await s?.close();
  });

  it('folds task > project > user > group > system, naming the scope each value came from', async () => {
    // Key n.k<i> is set at the i lowest scopes, so each key's winner is a different scope.
    const scopes: Array<[string, string | undefined, string]> = [
      ['system', undefined, s.adminToken],
      ['group', groupId, s.adminToken],
      ['user', undefined, alice.token],
      ['project', projectId, alice.token],
      ['task', taskId, alice.token],
    ];
    for (let i = 1; i <= 5; i++) {
      for (const [scopeType, scopeId, token] of scopes.slice(0, i)) {
        const res = await put(`fold.k${i}`, { scope_type: scopeType, ...(scopeId ? { scope_id: scopeId } : {}), value: `${scopeType}-${i}` }, token);
        expect(res.status, res.text).toBe(200);
      }
    }
    const res = await call('GET', `/v1/prefs/effective?task_id=${taskId}&include_sources=true`, undefined, alice.token);
    expect(res.status, res.text).toBe(200);
    expect(res.body.effective).toMatchObject({ 'fold.k1': 'system-1', 'fold.k2': 'group-2', 'fold.k3': 'user-3', 'fold.k4': 'project-4', 'fold.k5': 'task-5' });
    const source = (key: string) => res.body.sources.find((x: any) => x.key === key);
    expect(source('fold.k1')).toEqual({ key: 'fold.k1', scope_type: 'system', scope_id: null, version: 1 });
    expect(source('fold.k2')).toMatchObject({ scope_type: 'group', scope_id: groupId });
    expect(source('fold.k3')).toMatchObject({ scope_type: 'user', scope_id: alice.id });
    expect(source('fold.k4')).toMatchObject({ scope_type: 'project', scope_id: projectId });
    expect(source('fold.k5')).toMatchObject({ scope_type: 'task', scope_id: taskId });
    // The agent's own keys answer their defaults when no scope sets them.
    expect(res.body.effective).toMatchObject({ 'agents.project_manager.model.local_default_ollama_model': null, 'agents.project_manager.approval': 'never', 'agents.project_manager.max_steps': 8, 'agents.project_manager.max_seconds': 120 });
    expect(source('agents.project_manager.max_steps')).toMatchObject({ scope_type: 'default' });

    // In the project (no task), the project's value wins; deleting the task's value lets it through.
    const inProject = await call('GET', `/v1/prefs/effective?project_id=apollo`, undefined, alice.token);
    expect(inProject.body.effective['fold.k5']).toBe('project-5');
    expect((await call('DELETE', `/v1/prefs/fold.k5?scope_type=task&scope_id=${taskId}`, undefined, alice.token)).body).toEqual({ deleted: true });
    const after = await call('GET', `/v1/prefs/effective?task_id=${taskId}`, undefined, alice.token);
    expect(after.body.effective['fold.k5']).toBe('project-5');

    // Bob is in no group and sees neither alice's scopes nor her project.
    expect((await call('GET', `/v1/prefs/effective?task_id=${taskId}`, undefined, bob.token)).status).toBe(404);
    expect((await call('GET', `/v1/prefs/effective?project_id=${projectId}`, undefined, bob.token)).status).toBe(404);
    // A null at a higher scope masks lower values.
    await put('fold.k2', { scope_type: 'user', value: null }, alice.token);
    expect((await call('GET', `/v1/prefs/effective?project_id=${projectId}`, undefined, alice.token)).body.effective['fold.k2']).toBeNull();
    // Exactly one of task_id and project_id.
    expect((await call('GET', '/v1/prefs/effective', undefined, alice.token)).status).toBe(400);
    expect((await call('GET', `/v1/prefs/effective?task_id=${taskId}&project_id=${projectId}`, undefined, alice.token)).status).toBe(400);
  });

  it('writes with expected_version: 409 with the current version when stale, a bump when it matches or is absent', async () => {
    const first = await put('ui.theme', { scope_type: 'user', value: 'dark' }, alice.token);
    expect(first.body).toMatchObject({ ok: true, key: 'ui.theme', version: 1, created: true, preference: { value: 'dark', value_type: 'string', scope_type: 'user', scope_id: alice.id, updated_by: alice.id } });
    const second = await put('ui.theme', { scope_type: 'user', value: 'light', expected_version: 1 }, alice.token);
    expect(second.body).toMatchObject({ version: 2, created: false });
    const third = await put('ui.theme', { scope_type: 'user', value: 'blue' }, alice.token);
    expect(third.body.version).toBe(3);

    const stale = await put('ui.theme', { scope_type: 'user', value: 'red', expected_version: 2 }, alice.token);
    expect(stale.status).toBe(409);
    expect(stale.headers.get('content-type')).toContain('application/problem+json');
    expect(stale.body).toMatchObject({ status: 409, current_version: 3 });
    // "Only if it does not exist yet" fails for an existing key, and a stale delete too.
    expect((await put('ui.theme', { scope_type: 'user', value: 'red', expected_version: 0 }, alice.token)).status).toBe(409);
    expect((await call('DELETE', '/v1/prefs/ui.theme?scope_type=user&expected_version=1', undefined, alice.token)).status).toBe(409);
    const read = await call('GET', '/v1/prefs/ui.theme?scope_type=user', undefined, alice.token);
    expect(read.body).toMatchObject({ value: 'blue', version: 3 });
    expect((await call('GET', '/v1/prefs?scope_type=user', undefined, alice.token)).body.preferences.map((p: any) => p.key)).toContain('ui.theme');
  });

  it('audits every create, update and delete with its reason and versions, never the value; only admins read it', async () => {
    await put('audit.note', { scope_type: 'user', value: 'first-value-xyz', reason: 'trying it' }, alice.token);
    await put('audit.note', { scope_type: 'user', value: 'second-value-xyz', reason: 'changed my mind' }, alice.token);
    await call('DELETE', '/v1/prefs/audit.note?scope_type=user&reason=no%20longer%20needed', undefined, alice.token);
    await put('audit.other', { scope_type: 'user', value: 1, reason: `rotated ${GITHUB_TOKEN}` }, alice.token);
    const redacted = await call('GET', '/v1/prefs/audit?key=audit.other');
    expect(redacted.body.entries[0].reason).toBe('rotated SECRET_REDACTED');
    const log = await call('GET', `/v1/prefs/audit?key=audit.note&scope_id=${alice.id}`);
    expect(log.status, log.text).toBe(200);
    expect(log.body.entries.map((e: any) => [e.action, e.old_version, e.new_version, e.reason])).toEqual([
      ['deleted', 2, null, 'no longer needed'],
      ['updated', 1, 2, 'changed my mind'],
      ['created', null, 1, 'trying it'],
    ]);
    expect(log.body.entries[0]).toMatchObject({ scope_type: 'user', scope_id: alice.id, changed_by: alice.id, changed_by_handle: 'alice', via: 'session' });
    expect(log.text).not.toContain('value-xyz');
    // Pages on.
    const page = await call('GET', `/v1/prefs/audit?key=audit.note&limit=2`);
    expect(page.body.entries).toHaveLength(2);
    const rest = await call('GET', `/v1/prefs/audit?key=audit.note&limit=2&cursor=${page.body.next_cursor}`);
    expect(rest.body.entries.map((e: any) => e.action)).toEqual(['created']);
    expect((await call('GET', '/v1/prefs/audit', undefined, alice.token)).status).toBe(403);
  });

  it('lets only admins write system and group scope, and each user only their own', async () => {
    const denied = await put('org.name', { scope_type: 'system', value: 'x' }, alice.token);
    expect(denied.status).toBe(403);
    expect((await put('org.name', { scope_type: 'group', scope_id: groupId, value: 'x' }, alice.token)).status).toBe(403);
    // Alice reads her group's and the system's scope; Bob, in no group, does not see the group.
    expect((await call('GET', `/v1/prefs?scope_type=group&scope_id=${groupId}`, undefined, alice.token)).status).toBe(200);
    expect((await call('GET', `/v1/prefs?scope_type=group&scope_id=${groupId}`, undefined, bob.token)).status).toBe(404);
    expect((await call('GET', '/v1/prefs?scope_type=system', undefined, bob.token)).status).toBe(200);

    expect((await put('ui.theme', { scope_type: 'user', scope_id: alice.id, value: 'x' }, bob.token)).status).toBe(403);
    expect((await call('GET', `/v1/prefs?scope_type=user&scope_id=${alice.id}`, undefined, bob.token)).status).toBe(403);
    // Admins may write anyone's scope; unknown objects are 404.
    expect((await put('ui.font', { scope_type: 'user', scope_id: bob.id, value: 'mono', reason: 'support ticket' })).status).toBe(200);
    expect((await put('ui.font', { scope_type: 'user', scope_id: UNKNOWN, value: 'x' })).status).toBe(404);
    expect((await put('ui.font', { scope_type: 'group', scope_id: UNKNOWN, value: 'x' })).status).toBe(404);
    expect((await put('ui.font', { scope_type: 'project', scope_id: UNKNOWN, value: 'x' })).status).toBe(404);
    expect((await put('ui.font', { scope_type: 'task', scope_id: UNKNOWN, value: 'x' })).status).toBe(404);
    // Bob cannot see alice's project or task; alice's task is hers to set.
    expect((await put('ui.font', { scope_type: 'project', scope_id: projectId, value: 'x' }, bob.token)).status).toBe(404);
    expect((await put('ui.font', { scope_type: 'task', scope_id: taskId, value: 'x' }, bob.token)).status).toBe(404);
    // A viewer of the project reads its preferences but may not change them.
    expect((await call('POST', '/v1/role-bindings', { subject_type: 'user', subject_id: bob.id, role: 'viewer', scope_type: 'project', scope_id: projectId }, alice.token)).status).toBeLessThan(300);
    expect((await call('GET', `/v1/prefs?scope_type=project&scope_id=${projectId}`, undefined, bob.token)).status).toBe(200);
    expect((await put('ui.font', { scope_type: 'project', scope_id: projectId, value: 'x' }, bob.token)).status).toBe(403);
  });

  it('refuses bad keys, values of the wrong type and anything that looks like a credential', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['nodots', { scope_type: 'user', value: 1 }],
      ['Upper.Case', { scope_type: 'user', value: 1 }],
      ['agents.project_manager.max_steps', { scope_type: 'user', value: 0 }],
      ['agents.project_manager.max_steps', { scope_type: 'user', value: 51 }],
      ['agents.project_manager.max_steps', { scope_type: 'user', value: '8' }],
      ['agents.project_manager.max_seconds', { scope_type: 'user', value: 2.5 }],
      ['agents.project_manager.approval', { scope_type: 'user', value: 'always' }],
      ['agents.project_manager.model.local_default_ollama_model', { scope_type: 'user', value: 42 }],
      ['ui.size', { scope_type: 'user', value: 'big', value_type: 'number' }],
      ['ui.size', { scope_type: 'user' }],
      ['ui.size', { scope_type: 'user', value: 'x'.repeat(20_000) }],
      ['ui.size', { scope_type: 'system', scope_id: UNKNOWN, value: 1 }],
      ['ui.size', { scope_type: 'galaxy', value: 1 }],
      ['ui.size', { scope_type: 'project', value: 1 }],
      ['github.token', { scope_type: 'user', value: 'placeholder-free' }],
      ['integrations.openai_api_key', { scope_type: 'user', value: 'x' }],
      ['notes.deploy', { scope_type: 'user', value: `use ${GITHUB_TOKEN} to push` }],
      ['notes.deploy', { scope_type: 'user', value: { nested: [{ password: 'hunter2-is-my-password' }] } }],
    ];
    for (const [key, body] of cases) {
      const res = await put(key, body, alice.token);
      expect(res.status, `${key} ${JSON.stringify(body).slice(0, 80)}: ${res.text}`).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.text).not.toContain(GITHUB_TOKEN);
    }
    // Valid known keys are accepted and fold for the agent.
    for (const [key, value] of [['agents.project_manager.max_steps', 12], ['agents.project_manager.approval', 'mutating'], ['agents.project_manager.model.local_default_ollama_model', 'llama3.2']] as const) {
      expect((await put(key, { scope_type: 'user', value }, alice.token)).status).toBe(200);
    }
    const eff = await call('GET', `/v1/prefs/effective?project_id=${projectId}`, undefined, alice.token);
    expect(eff.body.effective).toMatchObject({ 'agents.project_manager.max_steps': 12, 'agents.project_manager.approval': 'mutating', 'agents.project_manager.model.local_default_ollama_model': 'llama3.2', 'agents.project_manager.max_seconds': 120 });
    expect(agentPmSettings(eff.body.effective)).toEqual({ model: 'llama3.2', approval: 'mutating', maxSteps: 12, maxSeconds: 120 });
    // Nothing refused was stored.
    const mine = await call('GET', '/v1/prefs?scope_type=user', undefined, alice.token);
    expect(mine.body.preferences.map((p: any) => p.key)).not.toContain('notes.deploy');
  });

  it('serves the same preferences over MCP: preference.effective answers as REST does, preference.set is audited', async () => {
    const client = await connect(alice.token);
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const name of ['preference.get', 'preference.list', 'preference.effective']) expect(byName.get(name)?.annotations, name).toMatchObject({ readOnlyHint: true });
    for (const name of ['preference.set', 'preference.delete']) expect(byName.get(name)?.annotations, name).toMatchObject({ readOnlyHint: false });

    const set = (await client.callTool({ name: 'preference.set', arguments: { key: 'mcp.color', scope_type: 'task', scope_id: taskId, value: 'green', reason: 'from the agent' } })) as CallToolResult;
    expect(set.isError ?? false, JSON.stringify(set.content)).toBe(false);
    expect(set.structuredContent).toMatchObject({ ok: true, version: 1, created: true });

    const viaMcp = (await client.callTool({ name: 'preference.effective', arguments: { task_id: taskId } })) as CallToolResult;
    const viaRest = await call('GET', `/v1/prefs/effective?task_id=${taskId}`, undefined, alice.token);
    expect(viaMcp.structuredContent).toEqual(viaRest.body);
    expect(viaRest.body.effective['mcp.color']).toBe('green');

    const stale = (await client.callTool({ name: 'preference.set', arguments: { key: 'mcp.color', scope_type: 'task', scope_id: taskId, value: 'red', expected_version: 5 } })) as CallToolResult;
    expect(stale.isError).toBe(true);
    const bad = (await client.callTool({ name: 'preference.set', arguments: { key: 'agents.project_manager.max_steps', scope_type: 'user', value: 500 } })) as CallToolResult;
    expect(bad.isError).toBe(true);

    const log = await call('GET', '/v1/prefs/audit?key=mcp.color');
    expect(log.body.entries).toHaveLength(1);
    expect(log.body.entries[0]).toMatchObject({ action: 'created', scope_type: 'task', scope_id: taskId, new_version: 1, reason: 'from the agent', changed_by: alice.id });
  });

  it('holds an agent to its task and keeps it from changing the agents.* settings that bound it', async () => {
    const minted = await call('POST', '/v1/agent-tokens', { role: 'project_manager', task_id: taskId }, alice.token);
    expect(minted.status, minted.text).toBe(201);
    const other = await call('POST', '/v1/tasks', { prompt: 'echo other', input_mode: 'commands', project_id: projectId }, alice.token);
    const agent = await connect(minted.body.token);

    // Without ids, the agent gets its task's fold: the same as its user asking for that task.
    const mine = await tool(agent, 'preference.effective', {});
    expect(mine.isError ?? false, JSON.stringify(mine.content)).toBe(false);
    expect(mine.structuredContent).toEqual((await call('GET', `/v1/prefs/effective?task_id=${taskId}`, undefined, alice.token)).body);

    for (const [name, args] of [
      ['preference.set', { key: 'agents.project_manager.approval', scope_type: 'user', value: 'never' }],
      ['preference.set', { key: 'agents.project_manager.max_steps', scope_type: 'task', scope_id: taskId, value: 50 }],
      ['preference.delete', { key: 'agents.project_manager.approval', scope_type: 'user' }],
      ['preference.set', { key: 'notes.lang', scope_type: 'task', scope_id: other.body.id, value: 'go' }],
      ['preference.list', { scope_type: 'task', scope_id: other.body.id }],
      ['preference.effective', { task_id: other.body.id }],
    ] as const) {
      const res = await tool(agent, name, args);
      expect(res.isError, `${name} ${JSON.stringify(args)}`).toBe(true);
    }
    expect((await call('GET', '/v1/prefs/agents.project_manager.approval?scope_type=user', undefined, alice.token)).body.value).toBe('mutating');

    const noted = await tool(agent, 'preference.set', { key: 'notes.lang', scope_type: 'task', scope_id: taskId, value: 'python', reason: 'the user said so' });
    expect(noted.structuredContent).toMatchObject({ ok: true, version: 1 });
    const log = await call('GET', '/v1/prefs/audit?key=notes.lang');
    expect(log.body.entries[0]).toMatchObject({ via: 'agent:project_manager', changed_by: alice.id, reason: 'the user said so' });
  });
});
