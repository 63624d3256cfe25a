import { rm } from 'node:fs/promises';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NodeManager } from '../../node-manager/agent/node-manager';
import { startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { ensureSandboxImage } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startTestNode } from '../support/nodes';
import { openSse, type SseFrame } from '../support/sse';
import { until } from '../support/until';

/*
 * The project-manager agent (`cynodeai.pm`) as a chat model, driven by the official openai SDK:
 * a real Node Manager runs the sandboxes and fronts the Ollama fixture, whose queued answers
 * script the model's side of the tool loop.
 */

const PLAIN_MODEL = 'phi3:mini';
const TOOLS_MODEL = 'llama3.1:8b';
const PM = 'cynodeai.pm';

describe.each(DB_KINDS)('the project-manager agent cynodeai.pm on %s', (kind) => {
  let s: TestServer;
  let ollama: OllamaFixture;
  let node: NodeManager;
  let stateDir: string;
  let client: OpenAI;

  const modelIds = async () => (await client.models.list()).data.map((m) => m.id);
  /** The tool messages the model was given in its last call, parsed. */
  const toolResults = () =>
    (ollama.requestsTo('/api/chat').at(-1)!.body.messages as Array<{ role: string; content: string }>).filter((m) => m.role === 'tool').map((m) => JSON.parse(m.content) as Record<string, any>);

  beforeAll(async () => {
    await ensureSandboxImage();
    // At first only a model that cannot call tools: the agent has nothing to run on.
    ollama = await startOllamaFixture({ models: [PLAIN_MODEL] });
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1, chatTimeoutSeconds: 30 });
    ({ node, stateDir } = await startTestNode(s, `pm-${kind}`, { ollamaHost: ollama.url }));
    client = new OpenAI({ baseURL: `${s.cynode.gatewayUrl}/v1`, apiKey: s.adminToken, maxRetries: 0 });
    await until('the node to serve its model', async () => (await modelIds()).includes(PLAIN_MODEL));
  });
  afterAll(async () => {
    await node?.close();
    await s?.close();
    await ollama?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });
  beforeEach(() => ollama.setBehaviour({}));

  it('lists cynodeai.pm only while a served model has the tools capability, and answers 503 without one', async () => {
    expect(await modelIds()).toEqual([PLAIN_MODEL]);
    const refused = await client.chat.completions.create({ model: PM, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect(refused).toMatchObject({ status: 503, code: 'cynodeai_inference_unavailable' });

    ollama.capabilities.set(TOOLS_MODEL, ['completion', 'tools']);
    ollama.models.add(TOOLS_MODEL);
    const ids = await until('the agent to be listed', async () => {
      const now = await modelIds();
      return now.includes(PM) && now.includes(TOOLS_MODEL) ? now : undefined;
    });
    expect(ids).toEqual([PM, TOOLS_MODEL, PLAIN_MODEL]);
  });

  it('runs `echo hello` in a sandbox through task.create and task.result, and answers with what it printed', async () => {
    const name = `pm-echo-${kind}`;
    ollama.setBehaviour({ toolCalls: [{ name: 'task.create', arguments: { prompt: 'echo hello', input_mode: 'commands', task_name: name } }] }, { once: true });
    ollama.setBehaviour({ toolCalls: [{ name: 'task.result', arguments: { task_id: name, wait_seconds: 30 } }], toolCallsAnyTurn: true }, { once: true });
    const before = ollama.requestsTo('/api/chat').length;

    // No model: the agent answers.
    const res = await client.chat.completions.create({ messages: [{ role: 'user', content: 'Run `echo hello` and tell me what it printed' }] } as never as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(res.model).toBe(PM);
    const answer = res.choices[0]!.message.content!;
    // The fixture echoes the last tool result it was given: task.result's JSON with the output.
    expect(answer).toMatch(/^Echo tool: /);
    expect(answer).toContain('hello');
    expect(res.choices[0]!.finish_reason).toBe('stop');

    // Three model calls on the tools model, with the system prompt and the MCP tools.
    const calls = ollama.requestsTo('/api/chat').slice(before);
    expect(calls).toHaveLength(3);
    expect(calls[0]!.body.model).toBe(TOOLS_MODEL);
    expect(calls[0]!.body.messages[0]).toMatchObject({ role: 'system', content: expect.stringContaining('project manager') });
    const toolNames = (calls[0]!.body.tools as Array<{ function: { name: string } }>).map((t) => t.function.name);
    expect(toolNames).toEqual(expect.arrayContaining(['task.create', 'task.result', 'task.cancel']));
    const [created, result] = toolResults();
    expect(created).toMatchObject({ task_name: name, input_mode: 'commands' });
    expect(result).toMatchObject({ status: 'completed', exit_code: 0, stdout: expect.stringContaining('hello') });

    // The task really ran, in the turn's session, whose runs the ledger lists.
    const task = await s.api.call(`/v1/tasks/${name}`, { token: s.adminToken });
    expect(task.body).toMatchObject({ status: 'completed', session_id: expect.any(String) });
    const runs = await s.api.call(`/v1/sessions/${task.body.session_id}/runs`, { token: s.adminToken });
    expect(runs.status, runs.text).toBe(200);
    // The task's run, and one run per agent step (three model calls), oldest step first once reversed.
    const taskRuns = runs.body.runs.filter((r: any) => r.kind === 'task');
    expect(taskRuns).toEqual([expect.objectContaining({ task_id: task.body.id, status: 'completed' })]);
    const steps = runs.body.runs.filter((r: any) => r.kind === 'agent_step').reverse();
    expect(steps.map((r: any) => [r.task_id, r.status, r.terminal])).toEqual([
      [null, 'completed', true],
      [null, 'completed', true],
      [null, 'completed', true],
    ]);
    expect(steps[0]).not.toHaveProperty('task_name');

    // Replaying the first step's events (SSE) shows the model call and the task.create call with what it created.
    const frames: SseFrame[] = [];
    const sse = await openSse(`${s.api.baseUrl}/v1/runs/${steps[0].id}/events/stream`, { token: s.adminToken, onFrame: (f) => void frames.push(f) });
    expect(sse.status).toBe(200);
    await sse.ended;
    expect(frames.at(-1)).toMatchObject({ event: 'done' });
    const first = frames.filter((f) => f.event === 'run.event').map((f) => JSON.parse(f.data).event);
    expect(first.map((e: any) => e.data?.type ?? e.data?.status)).toEqual(['running', 'model_call', 'tool_call', 'completed']);
    expect(first[1].data).toMatchObject({ model: TOOLS_MODEL, tool_calls: 1, status: 'success', duration_ms: expect.any(Number) });
    expect(first[2].data).toEqual(expect.objectContaining({ name: 'task.create', args_shape: { prompt: 'string', input_mode: 'string', task_name: 'string' }, status: 'success', task_id: task.body.id }));
    expect(JSON.stringify(first)).not.toContain('echo hello');
    // The last step holds the answer and how the turn ended.
    const last = (await s.api.call(`/v1/runs/${steps[2].id}/events`, { token: s.adminToken })).body.items.map((e: any) => e.data);
    expect(last.map((d: any) => d.type ?? d.status)).toEqual(['running', 'model_call', 'answer', 'turn_end', 'completed']);
    expect(last[2]).toMatchObject({ content: answer, ended: 'answer', steps: 3 });
    // A step is its user's alone (even an admin's step is hidden from others), and only the agent writes to it.
    const bob = await s.createUser(`pm-bob-${kind}`);
    expect((await s.api.call(`/v1/runs/${steps[0].id}/events`, { token: bob.token })).status).toBe(404);
    const other = await s.api.call(`/v1/runs/${steps[0].id}/logs`, { token: s.adminToken, body: { entries: [{ stream: 'stdout', message: 'x' }] } });
    expect(other.status).toBe(409);

    // The thread replays the turn: the question, each step's calls (names and argument shapes) and results, the answer.
    const thread = (await s.api.call('/v1/chat/threads', { token: s.adminToken })).body.threads[0];
    const messages = (await s.api.call(`/v1/chat/threads/${thread.id}/messages?limit=200`, { token: s.adminToken })).body.messages.slice(-6);
    expect(messages.map((m: any) => [m.role, m.metadata?.tool_calls?.[0]?.name ?? m.metadata?.tool_name ?? null, m.metadata?.status ?? null])).toEqual([
      ['user', null, null],
      ['assistant', 'task.create', null],
      ['tool', 'task.create', 'success'],
      ['assistant', 'task.result', null],
      ['tool', 'task.result', 'success'],
      ['assistant', null, null],
    ]);
    expect(messages[1].metadata.tool_calls[0].args_shape).toEqual({ prompt: 'string', input_mode: 'string', task_name: 'string' });
    expect(messages[4].content).toContain('hello');
    expect(messages[5]).toMatchObject({ content: answer, metadata: expect.objectContaining({ model: PM }) });

    // The calls went through the MCP pipeline as a project_manager agent, and were audited.
    const audit = await s.api.call(`/v1/audit/tool-calls?task_id=${task.body.id}`, { token: s.adminToken });
    expect(audit.body.calls.map((c: any) => [c.tool_name, c.subject.type, c.subject.agent_role, c.status])).toEqual(
      expect.arrayContaining([
        ['task.create', 'agent', 'project_manager', 'success'],
        ['task.result', 'agent', 'project_manager', 'success'],
      ]),
    );
  });

  it('answers an unknown tool, bad arguments, invalid JSON and a repeated call with tool errors the model reads', async () => {
    ollama.setBehaviour({ toolCalls: [{ name: 'sandbox.exec', arguments: { command: 'id' } }] }, { once: true });
    ollama.setBehaviour({ toolCalls: [{ name: 'task.get', arguments: { task_id: 42 } }], toolCallsAnyTurn: true }, { once: true });
    ollama.setBehaviour({ toolCalls: [{ name: 'task.list', arguments: '{not json' as never }], toolCallsAnyTurn: true }, { once: true });
    ollama.setBehaviour({ toolCalls: [{ name: 'task.list', arguments: { limit: 1 } }], toolCallsAnyTurn: true }, { once: true });
    ollama.setBehaviour({ toolCalls: [{ name: 'task.list', arguments: { limit: 1 } }], toolCallsAnyTurn: true }, { once: true });

    const res = await client.chat.completions.create({ model: PM, messages: [{ role: 'user', content: 'Try things' }] });
    expect(res.choices[0]!.message.content).toMatch(/^Echo tool: .*repeated_call/);
    const results = toolResults();
    expect(results.map((r) => r.error?.type ?? 'ok')).toEqual(['unknown_tool', 'invalid_arguments', 'invalid_arguments', 'ok', 'repeated_call']);
    expect(results[1]!.error.message).toContain('task_id');
    expect(results[2]!.error.message).toContain('JSON');
  });

  it('ends a model that never stops calling tools at the step limit, with a report of what was done', async () => {
    ollama.setBehaviour({ toolCalls: [{ name: 'project.list', arguments: {} }], toolCallsAnyTurn: true });
    const before = ollama.requestsTo('/api/chat').length;
    const res = await client.chat.completions.create({ model: PM, messages: [{ role: 'user', content: 'Loop forever' }] });
    const answer = res.choices[0]!.message.content!;
    expect(answer).toContain('I stopped after 8 steps without a final answer.');
    expect(answer).toContain('- project.list: ok');
    expect(answer).toContain('- project.list: error (repeated_call)');
    expect(ollama.requestsTo('/api/chat').length - before).toBe(8);
  });

  it('streams progress lines and the answer as content deltas an OpenAI client reads', async () => {
    const name = `pm-stream-${kind}`;
    ollama.setBehaviour({ toolCalls: [{ name: 'task.create', arguments: { prompt: 'echo streamed', input_mode: 'commands', task_name: name } }] }, { once: true });
    ollama.setBehaviour({ toolCalls: [{ name: 'task.result', arguments: { task_id: name, wait_seconds: 30 } }], toolCallsAnyTurn: true }, { once: true });
    const stream = await client.chat.completions.create({ model: PM, stream: true, messages: [{ role: 'user', content: 'Run `echo streamed`' }] });
    let text = '';
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('stop');
    expect(text).toMatch(/^▸ task\.create \{.*"echo streamed".*\}\n✓ task\.create\n▸ task\.result .*\n✓ task\.result\nEcho tool: /s);
    expect(text).toContain('streamed\\n');
  });

  it('is bound by the access rules: a tool its user may not call is hidden from the model and refused', async () => {
    const me = (await s.api.call('/v1/users/me', { token: s.adminToken })).body;
    const rule = await s.api.call('/v1/policy/rules', {
      token: s.adminToken,
      body: { name: 'no task.create for the agent', text: `forbid (principal is Agent in Role::"project_manager", action == Action::"tool.call", resource == Tool::"task.create");` },
    });
    expect(rule.status, rule.text).toBe(201);
    try {
      ollama.setBehaviour({ toolCalls: [{ name: 'task.create', arguments: { prompt: 'echo no', input_mode: 'commands' } }] }, { once: true });
      const res = await client.chat.completions.create({ model: PM, messages: [{ role: 'user', content: 'Run `echo no`' }] });
      expect(res.choices[0]!.message.content).toContain('policy_denied');
      const names = (ollama.requestsTo('/api/chat').at(-2)!.body.tools as Array<{ function: { name: string } }>).map((t) => t.function.name);
      expect(names).not.toContain('task.create');
      expect(names).toContain('task.list');
      const audit = await s.api.call(`/v1/audit/tool-calls?tool_name=task.create&decision=deny&user_id=${me.id}`, { token: s.adminToken });
      expect(audit.body.calls[0]).toMatchObject({ subject: { type: 'agent', agent_role: 'project_manager' }, decision: 'deny' });
    } finally {
      await s.api.call(`/v1/policy/rules/${rule.body.id}`, { token: s.adminToken, method: 'DELETE' });
    }
  });

  describe('with approval on (agents.project_manager.approval = mutating)', () => {
    const put = (key: string, value: unknown) => s.api.call(`/v1/prefs/${key}`, { token: s.adminToken, method: 'PUT', body: { scope_type: 'user', value } });
    const pending = async () => (await s.api.call('/v1/agent/approvals?status=pending', { token: s.adminToken })).body.approvals;
    const taskCount = async () => (await s.api.call('/v1/tasks?limit=200', { token: s.adminToken })).body.tasks.length;
    const decisions = async (id: string) => (await s.api.call(`/v1/audit?resource_type=agent_approval&resource_id=${id}`, { token: s.adminToken })).body.events.map((e: any) => e.action).sort();
    /** A turn that asks for a task and ends waiting for approval: the question and the held approval. */
    const heldTurn = async (prompt: string, taskName?: string) => {
      ollama.setBehaviour({ toolCalls: [{ name: 'task.create', arguments: { prompt, input_mode: 'commands', ...(taskName ? { task_name: taskName } : {}) } }] }, { once: true });
      const ask = `Run \`${prompt}\``;
      const before = ollama.requestsTo('/api/chat').length;
      const res = await client.chat.completions.create({ model: PM, messages: [{ role: 'user', content: ask }] });
      // One model call: the call was held and the turn ended at once, asking.
      expect(ollama.requestsTo('/api/chat').length - before).toBe(1);
      expect(res.choices[0]!.finish_reason).toBe('stop');
      const question = res.choices[0]!.message.content!;
      const [approval] = await pending();
      expect(approval).toMatchObject({ tool_name: 'task.create', status: 'pending', outcome: null, args: expect.objectContaining({ prompt }) });
      expect(question).toContain('I need your approval before I run:');
      expect(question).toContain(`task.create {`);
      expect(question).toContain(approval.id);
      const history = [
        { role: 'user' as const, content: ask },
        { role: 'assistant' as const, content: question },
      ];
      return { approval, history };
    };

    beforeAll(async () => {
      expect((await put('agents.project_manager.max_steps', 3)).status).toBeLessThan(300);
      expect((await put('agents.project_manager.approval', 'mutating')).status).toBeLessThan(300);
    });
    afterAll(async () => {
      for (const key of ['agents.project_manager.max_steps', 'agents.project_manager.approval']) await s.api.call(`/v1/prefs/${key}?scope_type=user`, { token: s.adminToken, method: 'DELETE' });
    });

    it('holds a call that changes something; "deny" as the next message leaves nothing created and the agent says so', async () => {
      const tasksBefore = await taskCount();
      const { approval, history } = await heldTurn('echo denied');
      const res = await client.chat.completions.create({ model: PM, messages: [...history, { role: 'user', content: 'deny' }] });
      // The fixture echoes the last tool result it read: the denial.
      expect(res.choices[0]!.message.content).toMatch(/^Echo tool: .*approval_denied/);
      expect(await taskCount()).toBe(tasksBefore);
      expect(await pending()).toEqual([]);
      const all = (await s.api.call('/v1/agent/approvals', { token: s.adminToken })).body.approvals;
      expect(all.find((a: any) => a.id === approval.id)).toMatchObject({ status: 'denied', outcome: { ok: false, error: { type: 'approval_denied' } } });
      expect(await decisions(approval.id)).toEqual(['agent.approval.deny', 'agent.approval.request']);

      // The step limit comes from the preferences too; a read-only tool runs without asking.
      ollama.setBehaviour({ toolCalls: [{ name: 'project.list', arguments: {} }], toolCallsAnyTurn: true });
      const looped = await client.chat.completions.create({ model: PM, messages: [{ role: 'user', content: 'Loop' }] });
      expect(looped.choices[0]!.message.content).toContain('I stopped after 3 steps without a final answer.');
    });

    it('"approve" as the next message runs the held call and the turn goes on: the task runs and the agent answers with its output', async () => {
      const name = `pm-approved-${kind}`;
      const { approval, history } = await heldTurn('echo hello', name);
      expect((await s.api.call(`/v1/tasks/${name}`, { token: s.adminToken })).status).toBe(404);
      ollama.setBehaviour({ toolCalls: [{ name: 'task.result', arguments: { task_id: name, wait_seconds: 30 } }], toolCallsAnyTurn: true }, { once: true });
      const res = await client.chat.completions.create({ model: PM, messages: [...history, { role: 'user', content: 'approve' }] });
      const answer = res.choices[0]!.message.content!;
      expect(answer).toMatch(/^Echo tool: /);
      expect(answer).toContain('hello');
      const task = await s.api.call(`/v1/tasks/${name}`, { token: s.adminToken });
      expect(task.body).toMatchObject({ status: 'completed' });
      const all = (await s.api.call('/v1/agent/approvals?status=approved', { token: s.adminToken })).body.approvals;
      expect(all.find((a: any) => a.id === approval.id)).toMatchObject({ outcome: { ok: true, result: expect.objectContaining({ task_id: task.body.id }) } });
      expect(await decisions(approval.id)).toEqual(['agent.approval.approve', 'agent.approval.request']);

      // The approving turn's first step records the approved call and the task it created.
      const runs = (await s.api.call(`/v1/sessions/${task.body.session_id}/runs`, { token: s.adminToken })).body.runs;
      const first = runs.filter((r: any) => r.kind === 'agent_step').at(-1);
      const events = (await s.api.call(`/v1/runs/${first.id}/events`, { token: s.adminToken })).body.items.map((e: any) => e.data);
      expect(events).toContainEqual(expect.objectContaining({ type: 'tool_call', name: 'task.create', approval_id: approval.id, approval: 'approved', status: 'success', task_id: task.body.id }));
    });

    it('decides over the API: deny once (then 409), nobody else\'s, and the next turn tells the agent', async () => {
      const tasksBefore = await taskCount();
      const { approval, history } = await heldTurn('echo api');
      const bob = await s.createUser(`pm-approver-${kind}`);
      expect((await s.api.call(`/v1/agent/approvals/${approval.id}`, { token: bob.token, body: { decision: 'approve' } })).status).toBe(404);
      expect((await s.api.call('/v1/agent/approvals?status=pending', { token: bob.token })).body.approvals).toEqual([]);
      expect((await s.api.call(`/v1/agent/approvals/${approval.id}`, { token: s.adminToken, body: { decision: 'maybe' } })).status).toBe(400);
      const denied = await s.api.call(`/v1/agent/approvals/${approval.id}`, { token: s.adminToken, body: { decision: 'deny' } });
      expect(denied.status, denied.text).toBe(200);
      expect(denied.body).toMatchObject({ id: approval.id, status: 'denied' });
      const again = await s.api.call(`/v1/agent/approvals/${approval.id}`, { token: s.adminToken, body: { decision: 'approve' } });
      expect(again.status).toBe(409);
      expect(again.headers.get('content-type')).toContain('application/problem+json');
      expect(await taskCount()).toBe(tasksBefore);
      const res = await client.chat.completions.create({ model: PM, messages: [...history, { role: 'user', content: 'What happened?' }] });
      expect(res.choices[0]!.message.content).toMatch(/^Echo tool: .*approval_denied/);
    });

    it('approves over the API: the held call runs at once', async () => {
      const name = `pm-api-approved-${kind}`;
      const { approval } = await heldTurn('echo via api', name);
      const approved = await s.api.call(`/v1/agent/approvals/${approval.id}`, { token: s.adminToken, body: { decision: 'approve' } });
      expect(approved.status, approved.text).toBe(200);
      expect(approved.body).toMatchObject({ status: 'approved', outcome: { ok: true } });
      const task = await until('the approved task to complete', async () => {
        const t = await s.api.call(`/v1/tasks/${name}`, { token: s.adminToken });
        return t.body.status === 'completed' ? t.body : undefined;
      });
      expect(task.session_id).toBe(approval.session_id);
      // The thread's next turn tells the agent what came of it, once.
      const told = await client.chat.completions.create({ model: PM, messages: [{ role: 'user', content: 'Did it run?' }] });
      expect(told.choices[0]!.message.content).toMatch(new RegExp(`^Echo tool: .*${task.id}`));
      const again = await client.chat.completions.create({ model: PM, messages: [{ role: 'user', content: 'And now?' }] });
      expect(again.choices[0]!.message.content).not.toContain(task.id);
    });
  });

  it('cancels the task it started when the client goes away mid-turn', async () => {
    const name = `pm-gone-${kind}`;
    ollama.setBehaviour({ toolCalls: [{ name: 'task.create', arguments: { prompt: 'sleep 60', input_mode: 'commands', task_name: name } }] }, { once: true });
    ollama.setBehaviour({ toolCalls: [{ name: 'task.result', arguments: { task_id: name, wait_seconds: 30 } }], toolCallsAnyTurn: true }, { once: true });
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: PM, stream: true, messages: [{ role: 'user', content: 'Run `sleep 60`' }] }, { signal: controller.signal });
    let text = '';
    try {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        // The agent waits on the task now: the client leaves.
        if (text.includes('▸ task.result')) controller.abort();
      }
    } catch (err) {
      expect(controller.signal.aborted, String(err)).toBe(true);
    }
    expect(text).toContain('✓ task.create');
    const task = await until('the task to be canceled', async () => {
      const t = await s.api.call(`/v1/tasks/${name}`, { token: s.adminToken });
      return t.body.status === 'canceled' ? t.body : undefined;
    });
    expect(task.closed).toBe(true);
  });
});
