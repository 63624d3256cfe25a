import { rm } from 'node:fs/promises';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NodeManager } from '../../node-manager/agent/node-manager';
import { startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { ensureSandboxImage } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startTestNode } from '../support/nodes';
import { until } from '../support/until';
import { startWebApiPeers, type WebApiPeers } from '../support/web-api-peers';

/*
 * The project-manager agent and connectors (issue 16): the agent runs a connector operation only
 * as its user may, and never holds the connector's credential. The Ollama fixture scripts the
 * model's calls and records every request the "model" received; the http stand-in records every
 * request the peer received, headers included.
 */

const TOOLS_MODEL = 'llama3.1:8b';
const PM = 'cynodeai.pm';
const SECRET = 'pm-agent-bearer-7f3a9c1e5d2b4086';

describe.each(DB_KINDS)('the project-manager agent with connectors on %s', (kind) => {
  let s: TestServer;
  let ollama: OllamaFixture;
  let peers: WebApiPeers;
  let node: NodeManager;
  let stateDir: string;
  let alice: { id: string; token: string };
  let connectorId: string;

  const clientFor = (token: string) => new OpenAI({ baseURL: `${s.cynode.gatewayUrl}/v1`, apiKey: token, maxRetries: 0 });
  const invokeCall = (id: string) => ({ name: 'connector.op.invoke', arguments: { connector_id: id, operation: 'request', params: { method: 'GET', path: 'items' } } });
  /** The tool messages the model was given in its last call, parsed. */
  const lastToolResult = () => {
    const messages = ollama.requestsTo('/api/chat').at(-1)!.body.messages as Array<{ role: string; content: string }>;
    return JSON.parse(messages.filter((m) => m.role === 'tool').at(-1)!.content) as Record<string, any>;
  };

  beforeAll(async () => {
    await ensureSandboxImage();
    peers = await startWebApiPeers({ mattermost: 'm', discord: 'd', slack: 's', github: 'g' });
    ollama = await startOllamaFixture({ models: [{ name: TOOLS_MODEL, capabilities: ['completion', 'tools'] }] });
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1, chatTimeoutSeconds: 30 });
    ({ node, stateDir } = await startTestNode(s, `pm-conn-${kind}`, { ollamaHost: ollama.url }));
    alice = await s.createUser('alice');
    // The stand-in is allowed the way an admin allows an installation's own services.
    expect((await s.api.call('/v1/connectors/egress-allow', { method: 'PUT', token: s.adminToken, body: { entries: ['127.0.0.1'] } })).status).toBe(200);
    const c = await s.api.call('/v1/connectors', { token: alice.token, body: { type: 'http', name: 'Echo', config: { base_url: `${peers.url}/echo/api` } } });
    expect(c.status, c.text).toBe(201);
    connectorId = c.body.id;
    const cred = await s.api.call(`/v1/connectors/${connectorId}/credentials`, { token: alice.token, body: { type: 'bearer_token', secret: { token: SECRET } } });
    expect(cred.status, cred.text).toBe(201);
    const models = async (token: string) => (await clientFor(token).models.list()).data.map((m) => m.id);
    await until('the agent to be served', async () => (await models(alice.token)).includes(PM) && (await models(s.adminToken)).includes(PM));
  });
  afterAll(async () => {
    await node?.close();
    await s?.close();
    await ollama?.close();
    await peers?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });
  beforeEach(() => ollama.setBehaviour({}));

  it("runs its user's connector with the credential reaching only the peer: no request to the model, no thread, no audit holds the secret", async () => {
    ollama.setBehaviour({ toolCalls: [invokeCall(connectorId)] }, { once: true });
    const seen = peers.requests.length;
    const res = await clientFor(alice.token).chat.completions.create({ model: PM, messages: [{ role: 'user', content: 'Fetch the items from my Echo connector' }] });

    // The operation ran and its result came back to the model (which echoes it as its answer).
    const result = lastToolResult();
    expect(result).toMatchObject({ provider_status: 200, replayed: false, operation_id: expect.any(String) });
    expect(res.choices[0]!.message.content).toMatch(/^Echo tool: .*"provider_status":200/);
    const reached = peers.requests.slice(seen);
    expect(reached).toHaveLength(1);
    expect(reached[0]).toMatchObject({ method: 'GET', path: '/echo/api/items' });
    expect(reached[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);

    // Everything the model was ever sent (tools, tool results, prompts) is free of the secret.
    expect(ollama.requests.length).toBeGreaterThan(0);
    for (const r of ollama.requests) expect(JSON.stringify(r.body ?? null)).not.toContain(SECRET);
    expect(JSON.stringify(res)).not.toContain(SECRET);

    // Nor does the turn's trail: its thread and the tool-call audit.
    const thread = (await s.api.call('/v1/chat/threads', { token: alice.token })).body.threads[0];
    const messages = await s.api.call(`/v1/chat/threads/${thread.id}/messages?limit=200`, { token: alice.token });
    expect(messages.body.messages.map((m: any) => m.metadata?.tool_name ?? null)).toContain('connector.op.invoke');
    expect(messages.text).not.toContain(SECRET);
    const audit = await s.api.call(`/v1/audit/tool-calls?tool_name=connector.op.invoke&user_id=${alice.id}`, { token: s.adminToken });
    expect(audit.body.calls[0]).toMatchObject({ subject: { type: 'agent', agent_role: 'project_manager' }, status: 'success' });
    expect(audit.text).not.toContain(SECRET);
  });

  it('is denied a connector call its user may not make: refused with policy_denied, audited, and the agent says so', async () => {
    // The admin sees Alice's instance but no rule lets the admin run it; the admin's agent is bound alike.
    const admin = (await s.api.call('/v1/users/me', { token: s.adminToken })).body;
    ollama.setBehaviour({ toolCalls: [invokeCall(connectorId)] }, { once: true });
    const seen = peers.requests.length;
    const res = await clientFor(s.adminToken).chat.completions.create({ model: PM, messages: [{ role: 'user', content: "Fetch the items from Alice's Echo connector" }] });

    expect(lastToolResult()).toMatchObject({ error: { type: 'policy_denied' } });
    expect(res.choices[0]!.message.content).toMatch(/^Echo tool: .*policy_denied/);
    expect(peers.requests.length).toBe(seen);

    // Audited as the agent's tool call, as the policy's access decision, and in the instance's history.
    const calls = await s.api.call(`/v1/audit/tool-calls?tool_name=connector.op.invoke&user_id=${admin.id}`, { token: s.adminToken });
    expect(calls.status, calls.text).toBe(200);
    expect(calls.body.calls[0]).toMatchObject({ subject: { type: 'agent', agent_role: 'project_manager' }, status: 'error', error_type: 'policy_denied' });
    const access = await s.api.call(`/v1/audit/access?action=connector.invoke&subject=${admin.id}&decision=deny&limit=5`, { token: s.adminToken });
    expect(access.status, access.text).toBe(200);
    expect(access.body.decisions[0]).toMatchObject({ decision: 'deny', action: 'connector.invoke' });
    const history = (await s.api.call(`/v1/connectors/${connectorId}/operations`, { token: alice.token })).body.operations;
    expect(history[0]).toMatchObject({ decision: 'deny', failure_class: 'policy_denied', subject_id: admin.id });
  });

  it("is bound by its role too: without the project manager's connector rule, Alice's agent may not run her connector, while Alice still may", async () => {
    const rule = 'default-agent-project-manager-connectors';
    const off = await s.api.call(`/v1/policy/rules/${rule}`, { method: 'PATCH', token: s.adminToken, body: { enabled: false } });
    expect(off.status, off.text).toBe(200);
    try {
      ollama.setBehaviour({ toolCalls: [invokeCall(connectorId)] }, { once: true });
      const seen = peers.requests.length;
      await clientFor(alice.token).chat.completions.create({ model: PM, messages: [{ role: 'user', content: 'Fetch the items from my Echo connector' }] });
      expect(lastToolResult()).toMatchObject({ error: { type: 'policy_denied' } });
      expect(peers.requests.length).toBe(seen);
      // The decision names the agent: its half found no rule.
      const access = await s.api.call(`/v1/audit/access?action=connector.invoke&subject=${alice.id}&decision=deny&limit=1`, { token: s.adminToken });
      expect(access.body.decisions[0]).toMatchObject({ decision: 'deny', subject: { agent_role: 'project_manager' } });

      const direct = await s.api.call(`/v1/connectors/${connectorId}/operations/request`, { token: alice.token, body: { params: { method: 'GET', path: 'items' } } });
      expect(direct.status, direct.text).toBe(200);
    } finally {
      const on = await s.api.call(`/v1/policy/rules/${rule}`, { method: 'PATCH', token: s.adminToken, body: { enabled: true } });
      expect(on.status, on.text).toBe(200);
    }
  });
});
