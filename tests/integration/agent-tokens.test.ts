import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/*
 * Agent-scoped tokens end to end: minted through the API (or by the orchestrator through the
 * service), verified as /mcp will verify them, refused by the User API, revoked at once; and the
 * role allowlists as the access rules decide them, bounded by what the user may do.
 */

describe.each(DB_KINDS)('agent tokens on %s', (kind) => {
  let s: TestServer;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  let aliceTask: { id: string; project_id: string; session_id: string | null };
  let bobTask: { id: string };

  beforeAll(async () => {
    s = await startTestServer(kind);
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
    const task = async (token: string) => {
      const res = await s.api.call('/v1/tasks', { token, body: { prompt: 'echo hello', input_mode: 'commands' } });
      expect(res.status, res.text).toBe(201);
      return res.body;
    };
    aliceTask = await task(alice.token);
    bobTask = await task(bob.token);
  });
  afterAll(async () => {
    await s?.close();
  });

  const mint = (token: string, body: Record<string, unknown>) => s.api.call('/v1/agent-tokens', { token, body });
  const minted = async (token: string, body: Record<string, unknown>) => {
    const res = await mint(token, body);
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; token: string; user_id: string; role: string; task_id: string | null; expires_at: string };
  };

  it('mints a token bound to the caller, the role and the task; verify names them, and it is shown only once', async () => {
    const before = Date.now();
    const res = await mint(alice.token, { role: 'worker', task_id: aliceTask.id });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({ user_id: alice.id, handle: 'alice', role: 'worker', task_id: aliceTask.id, project_id: aliceTask.project_id, revoked_at: null, token: expect.any(String) });
    // Fifteen minutes from the moment it was minted, somewhere between asking and the answer
    // (a second of slack below: a token's expiry is kept in whole seconds).
    const after = Date.now();
    const expires = Date.parse(res.body.expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 15 * 60_000 - 1000);
    expect(expires).toBeLessThanOrEqual(after + 15 * 60_000);

    const caller = await s.cynode.agentTokens.verify(res.body.token);
    expect(caller).toMatchObject({ id: res.body.id, userId: alice.id, handle: 'alice', role: 'worker', taskId: aliceTask.id, projectId: aliceTask.project_id });
    expect(caller!.expiresAt.toISOString()).toBe(res.body.expires_at);

    const listed = await s.api.call('/v1/agent-tokens', { token: alice.token });
    expect(listed.status).toBe(200);
    const mine = listed.body.agent_tokens.find((t: { id: string }) => t.id === res.body.id);
    expect(mine).toMatchObject({ role: 'worker', task_id: aliceTask.id });
    expect(mine).not.toHaveProperty('token');
    expect(JSON.stringify(listed.body)).not.toContain(res.body.token);
  });

  it('refuses an agent token on the User API, saying it works only at /mcp; it cannot mint another token', async () => {
    const { token } = await minted(alice.token, { role: 'project_manager' });
    for (const [path, body] of [['/v1/tasks', undefined], ['/v1/agent-tokens', undefined], ['/v1/agent-tokens', { role: 'worker' }], ['/v1/users/me', undefined]] as const) {
      const res = await s.api.call(path, { token, body });
      expect(res.status, path).toBe(401);
      expect(res.body.detail, path).toBe('agent tokens are accepted only at /mcp');
    }
  });

  it('never takes a session access token or an API key for an agent token, nor the other way round', async () => {
    expect(await s.cynode.agentTokens.verify(alice.token)).toBeNull();
    const key = await s.api.call('/v1/api-keys', { token: alice.token, body: { name: 'script' } });
    expect(key.status).toBe(201);
    expect(await s.cynode.agentTokens.verify(key.body.key)).toBeNull();
    expect(await s.cynode.agentTokens.verify('not-a-token')).toBeNull();

    const { token } = await minted(alice.token, { role: 'worker' });
    // A tampered token: the same claims under another signature.
    const [head, body] = token.split('.');
    expect(await s.cynode.agentTokens.verify(`${head}.${body}.${'A'.repeat(43)}`)).toBeNull();
    // An access token's claims in an agent token's place are refused too (type, audience, key).
    const [, accessBody] = alice.token.split('.');
    expect(await s.cynode.agentTokens.verify(`${head}.${accessBody}.${token.split('.')[2]}`)).toBeNull();
  });

  it('an API key mints for its own user; an admin too mints only for themselves; there is no user field', async () => {
    const key = await s.api.call('/v1/api-keys', { token: alice.token, body: { name: 'agent-minter' } });
    expect((await minted(key.body.key, { role: 'project_analyst' })).user_id).toBe(alice.id);
    const forBob = await mint(s.adminToken, { role: 'worker', user_id: bob.id });
    expect(forBob.status).toBe(400);
    const own = await minted(s.adminToken, { role: 'worker' });
    expect((await s.cynode.agentTokens.verify(own.token))!.userId).not.toBe(bob.id);
  });

  it('refuses what the caller may not bind or ask for: someone else’s task (404), an unknown role or a too long life (400)', async () => {
    const other = await mint(alice.token, { role: 'worker', task_id: bobTask.id });
    expect(other.status).toBe(404);
    expect(other.body.detail).toBe('Task not found');
    expect((await mint(alice.token, { role: 'worker', task_id: '00000000-0000-4000-8000-000000000000' })).status).toBe(404);
    expect((await mint(alice.token, { role: 'worker', session_id: '00000000-0000-4000-8000-000000000000' })).status).toBe(404);
    expect((await mint(alice.token, { role: 'admin' })).status).toBe(400);
    expect((await mint(alice.token, { role: 'worker', ttl_seconds: 3601 })).status).toBe(400);
    expect((await mint(alice.token, { role: 'worker', ttl_seconds: 0 })).status).toBe(400);
    // The service (the orchestrator's way in) holds the same line.
    await expect(s.cynode.agentTokens.mint({ userId: alice.id, role: 'worker', taskId: bobTask.id })).rejects.toMatchObject({ status: 404 });
    await expect(s.cynode.agentTokens.mint({ userId: alice.id, role: 'worker', ttlSeconds: 7200 })).rejects.toMatchObject({ status: 400 });
  });

  it('an expired token is refused', async () => {
    const past = new Date(Date.now() - 60_000);
    const { token } = await s.cynode.agentTokens.mint({ userId: alice.id, role: 'worker', ttlSeconds: 5 }, undefined, past);
    expect(await s.cynode.agentTokens.verify(token)).toBeNull();
    const live = await s.cynode.agentTokens.mint({ userId: alice.id, role: 'worker', ttlSeconds: 60 });
    expect(await s.cynode.agentTokens.verify(live.token)).not.toBeNull();
  });

  it('a revoked token is refused at once; owners and admins revoke, others see 404; mint and revoke are audited without the token', async () => {
    const t = await minted(alice.token, { role: 'project_manager', task_id: aliceTask.id });
    expect(await s.cynode.agentTokens.verify(t.token)).not.toBeNull();
    expect((await s.api.call(`/v1/agent-tokens/${t.id}`, { method: 'DELETE', token: bob.token })).status).toBe(404);
    expect(await s.cynode.agentTokens.verify(t.token)).not.toBeNull();
    expect((await s.api.call(`/v1/agent-tokens/${t.id}`, { method: 'DELETE', token: alice.token })).status).toBe(204);
    expect(await s.cynode.agentTokens.verify(t.token)).toBeNull();
    // Idempotent for its owner.
    expect((await s.api.call(`/v1/agent-tokens/${t.id}`, { method: 'DELETE', token: alice.token })).status).toBe(204);

    const u = await minted(alice.token, { role: 'worker' });
    expect((await s.api.call(`/v1/agent-tokens/${u.id}`, { method: 'DELETE', token: s.adminToken })).status).toBe(204);
    expect(await s.cynode.agentTokens.verify(u.token)).toBeNull();

    const active = (await s.api.call('/v1/agent-tokens', { token: alice.token })).body.agent_tokens.map((r: { id: string }) => r.id);
    expect(active).not.toContain(t.id);
    const all = (await s.api.call('/v1/agent-tokens?include_inactive=true', { token: alice.token })).body.agent_tokens;
    expect(all.find((r: { id: string }) => r.id === t.id)).toMatchObject({ revoked_at: expect.any(String) });

    const audit = await s.api.call(`/v1/audit?resource_type=agent_token&resource_id=${t.id}`, { token: s.adminToken });
    expect(audit.status).toBe(200);
    expect(audit.body.events.map((e: { action: string }) => e.action).sort()).toEqual(['agent_token_created', 'agent_token_revoked']);
    expect(audit.body.events.find((e: { action: string }) => e.action === 'agent_token_created')).toMatchObject({ actor_id: alice.id, details: { role: 'project_manager', task_id: aliceTask.id } });
    expect(JSON.stringify(audit.body)).not.toContain(t.token);
  });

  it('lists another user’s tokens only for admins', async () => {
    const t = await minted(alice.token, { role: 'worker' });
    expect((await s.api.call(`/v1/agent-tokens?user_id=${alice.id}`, { token: bob.token })).status).toBe(403);
    expect((await s.api.call('/v1/agent-tokens?all=true', { token: bob.token })).status).toBe(403);
    const seen = await s.api.call(`/v1/agent-tokens?user_id=${alice.id}`, { token: s.adminToken });
    expect(seen.status).toBe(200);
    expect(seen.body.agent_tokens.map((r: { id: string }) => r.id)).toContain(t.id);
    expect((await s.api.call('/v1/agent-tokens', { token: bob.token })).body.agent_tokens.map((r: { id: string }) => r.id)).not.toContain(t.id);
  });

  it('a disabled user’s agents stop at once', async () => {
    const carol = await s.createUser('carol');
    const t = await minted(carol.token, { role: 'worker' });
    expect(await s.cynode.agentTokens.verify(t.token)).not.toBeNull();
    expect((await s.api.call(`/v1/users/${carol.id}/disable`, { method: 'POST', token: s.adminToken })).status).toBe(200);
    expect(await s.cynode.agentTokens.verify(t.token)).toBeNull();
  });

  describe('role allowlists, bounded by the user', () => {
    const explain = async (userId: string, role: string, tool: string, readOnly: boolean) => {
      const res = await s.api.call('/v1/policy/explain', {
        token: s.adminToken,
        body: { subject: { user_id: userId, agent: { id: `agent-${role}`, role } }, action: 'tool.call', resource: { type: 'Tool', id: tool, read_only: readOnly } },
      });
      expect(res.status, res.text).toBe(200);
      return res.body as { decision: string; passes: Array<{ who: string; decision: string; rules: string[] }> };
    };

    it('a worker reads its task and runs, and nothing else', async () => {
      for (const tool of ['task.get', 'task.result', 'run.get', 'run.events', 'run.logs']) {
        const e = await explain(alice.id, 'worker', tool, true);
        expect(e.decision, tool).toBe('allow');
        expect(e.passes.find((p) => p.who === 'agent')!.rules).toEqual(['default-agent-worker']);
      }
      for (const [tool, readOnly] of [['task.create', false], ['task.list', true], ['node.list', true], ['connector.op.invoke', false]] as const) {
        const e = await explain(alice.id, 'worker', tool, readOnly);
        expect(e.decision, tool).toBe('deny');
        expect(e.passes.map((p) => [p.who, p.decision])).toEqual([['user', 'allow'], ['agent', 'deny']]);
      }
    });

    it('an analyst calls read-only tools only; a project manager calls every tool', async () => {
      expect((await explain(alice.id, 'project_analyst', 'task.list', true)).decision).toBe('allow');
      expect((await explain(alice.id, 'project_analyst', 'node.get', true)).decision).toBe('allow');
      expect((await explain(alice.id, 'project_analyst', 'task.create', false)).decision).toBe('deny');
      expect((await explain(alice.id, 'project_analyst', 'task.cancel', false)).decision).toBe('deny');
      expect((await explain(alice.id, 'project_manager', 'task.create', false)).decision).toBe('allow');
      expect((await explain(alice.id, 'project_manager', 'connector.op.invoke', false)).decision).toBe('allow');
      // A role no rule names gets nothing, even from a user who may call everything.
      expect((await explain(alice.id, 'intruder', 'task.get', true)).decision).toBe('deny');
    });

    it('a tool forbidden to the user is forbidden to their project manager agent too', async () => {
      const rule = await s.api.call('/v1/policy/rules', {
        token: s.adminToken,
        body: { name: 'No task.create for bob', text: `forbid (principal == User::"${bob.id}", action == Action::"tool.call", resource == Tool::"task.create");` },
      });
      expect(rule.status, rule.text).toBe(201);
      const e = await explain(bob.id, 'project_manager', 'task.create', false);
      expect(e.decision).toBe('deny');
      expect(e.passes).toEqual([expect.objectContaining({ who: 'user', decision: 'deny', rules: [rule.body.id] }), expect.objectContaining({ who: 'agent', decision: 'allow' })]);
      expect((await explain(alice.id, 'project_manager', 'task.create', false)).decision).toBe('allow');
      expect((await explain(bob.id, 'project_manager', 'task.get', true)).decision).toBe('allow');
    });
  });
});
