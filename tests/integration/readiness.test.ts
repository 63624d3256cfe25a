import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeManager, NodeManagerOptions } from '../../node-manager/agent/node-manager';
import { startOllamaFixture } from '../fixtures/ollama-fixture';
import { ApiClient, DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { SANDBOX_IMAGE, ensureSandboxImage } from '../support/docker';
import { startTestNode } from '../support/nodes';
import { until } from '../support/until';

/*
 * Readiness of the orchestrator: ready only when a dispatchable node
 * serves inference with a model, with real Node Managers (Worker API + agent) reporting what a
 * fixture Ollama says.
 */

const MISSING_IMAGE = 'cynode-test/no-such-ollama:never';

describe.each(DB_KINDS)('readiness on %s', (kind) => {
  let s: TestServer;
  const nodes: NodeManager[] = [];
  const dirs: string[] = [];

  const readyz = async (api: ApiClient) => {
    const res = await api.call('/readyz');
    return { status: res.status, text: res.text };
  };
  const both = async () => [await readyz(s.api), await readyz(new ApiClient(s.cynode.controlUrl))];

  async function node(name: string, extra: Partial<NodeManagerOptions>): Promise<NodeManager> {
    const { node: n, stateDir } = await startTestNode(s, name, extra);
    dirs.push(stateDir);
    nodes.push(n);
    return n;
  }

  const nodeView = async (slug: string) => {
    const list = await s.api.call('/v1/nodes', { token: s.adminToken });
    return list.body.nodes.find((n: any) => n.node_slug === slug);
  };

  beforeAll(async () => {
    await ensureSandboxImage();
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1, nodeStaleSeconds: 10, ollamaImage: MISSING_IMAGE });
  });
  afterAll(async () => {
    for (const n of nodes) await n.close();
    await s?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('is not ready without nodes, then ready once a node serves a model, and not again when its Ollama stops', async () => {
    for (const r of await both()) expect(r).toEqual({ status: 503, text: 'no inference path available (no dispatchable nodes)' });

    const ollama = await startOllamaFixture();
    try {
      await node('ready-node', { ollamaHost: ollama.url });
      // Ollama runs but has no model yet.
      await until('readiness to ask for a model', async () => (await readyz(s.api)).text.includes('no model is installed'));
      for (const r of await both()) {
        expect(r.status).toBe(503);
        expect(r.text).toBe('no inference path available (inference is running but no model is installed: pull one, e.g. POST /v1/nodes/{id}/models)');
      }
      const view = await nodeView('ready-node');
      expect(view).toMatchObject({ dispatchable: true, capability_summary: { inference_running: true, models: [] } });

      ollama.models.add('llama3:8b');
      await until('readiness after the next heartbeat', async () => (await readyz(s.api)).status === 200);
      for (const r of await both()) expect(r).toEqual({ status: 200, text: 'ready' });
      expect((await nodeView('ready-node')).capability_summary.models).toEqual(['llama3:8b']);
    } finally {
      await ollama.close();
    }
    await until('readiness to notice the stopped Ollama', async () => (await readyz(s.api)).status === 503);
    for (const r of await both()) {
      expect(r.status).toBe(503);
      expect(r.text).toBe('no inference path available (no node serves inference: start Ollama on a node, or set OLLAMA_HOST)');
    }
    // The node itself stays dispatchable for sandbox work; only its inference is gone.
    expect(await nodeView('ready-node')).toMatchObject({ dispatchable: true, capability_summary: { inference_running: false, models: [] } });
  });

  it('counts a node that serves models but runs no sandboxes as an inference path', async () => {
    const ollama = await startOllamaFixture({ models: ['phi3:mini'] });
    try {
      // A GPU box without the sandbox image: no sandbox jobs for it, but it answers prompts.
      await node('models-only-node', { ollamaHost: ollama.url, sandboxImage: 'cynode-no-such-sandbox:none' });
      const view = await until('the models-only node to report', async () => {
        const v = await nodeView('models-only-node');
        return v?.capability_summary.models.includes('phi3:mini') ? v : null;
      });
      expect(view).toMatchObject({ dispatchable: false, capability_summary: { sandbox_supported: false, inference_running: true } });
      await until('readiness through the models-only node', async () => (await readyz(s.api)).status === 200);
    } finally {
      await ollama.close();
    }
    await until('readiness to notice the stopped Ollama', async () => (await readyz(s.api)).status === 503);
  });

  it("acks its config failed, naming the image, when it must start Ollama and the image is missing", async () => {
    // No OLLAMA_HOST and nothing at 127.0.0.1:11434, but an image the node could start Ollama
    // from (any present image stands in): the control plane asks it to start Ollama from
    // CYNODE_OLLAMA_IMAGE, which does not exist here.
    const n = await node('no-ollama-node', { ollamaImage: SANDBOX_IMAGE });
    const view = await until('the failed ack', async () => {
      const v = await nodeView(n.nodeSlug);
      return v?.config_ack_status === 'failed' ? v : null;
    });
    expect(view.config_ack_error).toMatchObject({ type: 'inference_start_failed', message: expect.stringContaining(MISSING_IMAGE) });
    expect(view.dispatchable).toBe(false);
    const full = await s.api.call(`/v1/nodes/${view.id}`, { token: s.adminToken });
    expect(full.body.capability.inference).toMatchObject({ supported: true, mode: 'allow', existing_service: false, running: false, available_models: [] });
  });

  it('reports inference unsupported and acks applied when there is neither an Ollama nor its image', async () => {
    const n = await node('no-image-node', { ollamaImage: MISSING_IMAGE });
    const view = await until('the applied ack', async () => {
      const v = await nodeView(n.nodeSlug);
      return v?.config_ack_status === 'applied' ? v : null;
    });
    expect(view.dispatchable).toBe(true);
    const full = await s.api.call(`/v1/nodes/${view.id}`, { token: s.adminToken });
    expect(full.body.capability.inference).toMatchObject({ supported: false, existing_service: false, running: false });
  });

  it('acks applied without Ollama when inference is disabled on the node', async () => {
    const n = await node('sandbox-only-node', { inferenceMode: 'disabled' });
    const view = await until('the applied ack', async () => {
      const v = await nodeView(n.nodeSlug);
      return v?.config_ack_status === 'applied' ? v : null;
    });
    expect(view).toMatchObject({ dispatchable: true, capability_summary: { inference_running: false } });
    const full = await s.api.call(`/v1/nodes/${view.id}`, { token: s.adminToken });
    expect(full.body.capability.inference).toMatchObject({ mode: 'disabled', running: false });
  });
});
