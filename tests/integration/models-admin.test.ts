import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeManager } from '../../node-manager/agent/node-manager';
import { startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { ensureSandboxImage } from '../support/docker';
import { startTestNode } from '../support/nodes';
import { until } from '../support/until';

/* Model management on a node through the gateway, with a real node and a fixture Ollama. */

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

/** Server-sent events as [event, data] pairs. */
function sseEvents(text: string): Array<[string, any]> {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(block)?.[1];
      return [event, data === undefined ? undefined : JSON.parse(data)];
    });
}

describe.each(DB_KINDS)('model administration on %s', (kind) => {
  let s: TestServer;
  let ollama: OllamaFixture;
  let node: NodeManager;
  let nodeId: string;
  let stateDir: string;

  const pull = (id: string, model: string, token = s.adminToken) =>
    fetch(`${s.cynode.gatewayUrl}/v1/nodes/${id}/models`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ model }) });
  const summaryModels = async () => (await s.api.call(`/v1/nodes/${nodeId}`, { token: s.adminToken })).body.capability_summary.models as string[];

  beforeAll(async () => {
    await ensureSandboxImage();
    ollama = await startOllamaFixture({ models: ['llama3:8b'] });
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1, nodeStaleSeconds: 10 });
    ({ node, stateDir } = await startTestNode(s, 'model-node', { ollamaHost: ollama.url }));
    nodeId = (await s.api.call('/v1/nodes', { token: s.adminToken })).body.nodes.find((n: any) => n.node_slug === 'model-node').id;
  });
  afterAll(async () => {
    await node?.close();
    await s?.close();
    await ollama?.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('lists the models of a node, asked of the node', async () => {
    const res = await s.api.call(`/v1/nodes/${nodeId}/models`, { token: s.adminToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ models: [{ name: 'llama3:8b', size: expect.any(Number), digest: expect.stringMatching(/^sha256:/), modified_at: expect.any(String) }] });
  });

  it('pulls a model with progress streamed as server-sent events; the node then reports it', async () => {
    const res = await pull(nodeId, 'qwen3:0.6b');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = sseEvents(await res.text());
    expect(events[0]).toEqual(['progress', { status: 'pulling manifest', completed: null, total: null, percent: null }]);
    const downloads = events.filter(([e, d]) => e === 'progress' && d.total !== null).map(([, d]) => d);
    expect(downloads.map((d) => d.percent)).toEqual([0, 33, 66, 100]);
    expect(downloads[1]).toMatchObject({ completed: 1000, total: 3000 });
    expect(events.at(-1)).toEqual(['done', { status: 'success', model: 'qwen3:0.6b' }]);
    expect(ollama.requestsTo('/api/pull').at(-1)!.body).toMatchObject({ model: 'qwen3:0.6b' });

    await until('the heartbeat to report the model', async () => (await summaryModels()).includes('qwen3:0.6b'));
    expect((await summaryModels()).sort()).toEqual(['llama3:8b', 'qwen3:0.6b']);

    const audit = await s.api.call(`/v1/audit?action=model_pulled&resource_id=${nodeId}`, { token: s.adminToken });
    expect(audit.body.events).toHaveLength(1);
    expect(audit.body.events[0]).toMatchObject({ outcome: 'success', actor_handle: 'admin', details: { node_slug: 'model-node', model: 'qwen3:0.6b' } });
  });

  it('ends the stream with an error event when Ollama cannot pull the model', async () => {
    const res = await pull(nodeId, 'missing-model:1b');
    expect(res.status).toBe(200);
    const events = sseEvents(await res.text());
    expect(events).toEqual([
      ['progress', { status: 'pulling manifest', completed: null, total: null, percent: null }],
      ['error', { message: 'pull model manifest: file does not exist' }],
    ]);
    const audit = await s.api.call(`/v1/audit?action=model_pulled&resource_id=${nodeId}&outcome=failure`, { token: s.adminToken });
    expect(audit.body.events[0]).toMatchObject({ outcome: 'failure', details: { model: 'missing-model:1b', reason: 'pull model manifest: file does not exist' } });
  });

  it('deletes a model: 204, then 404', async () => {
    ollama.models.add('tiny:1m');
    const del = await s.api.call(`/v1/nodes/${nodeId}/models/${encodeURIComponent('tiny:1m')}`, { method: 'DELETE', token: s.adminToken });
    expect(del.status).toBe(204);
    expect(ollama.models.has('tiny:1m')).toBe(false);
    const again = await s.api.call(`/v1/nodes/${nodeId}/models/tiny:1m`, { method: 'DELETE', token: s.adminToken });
    expect(again.status).toBe(404);
    expect(again.headers.get('content-type')).toContain('application/problem+json');
    const audit = await s.api.call(`/v1/audit?action=model_deleted&resource_id=${nodeId}`, { token: s.adminToken });
    expect(audit.body.events).toHaveLength(1);
    expect(audit.body.events[0]).toMatchObject({ outcome: 'success', details: { model: 'tiny:1m' } });
  });

  it('is for nodes.manage (pull, delete) and nodes.read (list); unknown nodes are 404', async () => {
    const user = await s.createUser('model-peeker');
    expect((await pull(nodeId, 'llama3:8b', user.token)).status).toBe(403);
    expect((await s.api.call(`/v1/nodes/${nodeId}/models/llama3:8b`, { method: 'DELETE', token: user.token })).status).toBe(403);
    expect((await s.api.call(`/v1/nodes/${nodeId}/models`, { token: user.token })).status).toBe(403);
    expect(ollama.models.has('llama3:8b')).toBe(true);

    expect((await pull(UNKNOWN, 'llama3:8b')).status).toBe(404);
    expect((await s.api.call(`/v1/nodes/${UNKNOWN}/models/llama3:8b`, { method: 'DELETE', token: s.adminToken })).status).toBe(404);
    expect((await s.api.call(`/v1/nodes/${UNKNOWN}/models`, { token: s.adminToken })).status).toBe(404);
    expect((await s.api.call(`/v1/nodes/${nodeId}/models`, { token: s.adminToken, body: { model: '../etc' } })).status).toBe(400);
    expect((await s.api.call(`/v1/nodes/${nodeId}/models`, { token: s.adminToken, body: {} })).status).toBe(400);
  });

  it("answers 503 when the node's Ollama is down", async () => {
    const url = ollama.url;
    const models = [...ollama.models];
    await ollama.close();
    try {
      const res = await pull(nodeId, 'llama3:8b');
      expect(res.status).toBe(503);
      expect((await res.json()).detail).toContain('inference is not running on this node');
      expect((await s.api.call(`/v1/nodes/${nodeId}/models`, { token: s.adminToken })).status).toBe(503);
    } finally {
      ollama = await startOllamaFixture({ models, port: Number(new URL(url).port) });
    }
  });
});
