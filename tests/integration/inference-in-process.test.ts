import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeCallError, NodeClient } from '../../server/nodes/node-client';
import { startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { freePort } from '../support/ports';
import { until } from '../support/until';

/*
 * The desktop's own node is called in process: chat and prompt tasks reach its Ollama without
 * the loopback Worker API hop. Its Worker API URL here is a port nobody listens on, so an answer
 * proves the hop was skipped; everything else (streaming, aborts, retryable failures) must
 * behave as through the Worker API.
 */

const MODEL = 'llama3:8b';
const ask = (content: string) => ({ model: MODEL, messages: [{ role: 'user', content }], stream: true });

describe('inference with a node in this process', () => {
  let ollama: OllamaFixture;
  let client: NodeClient;
  let workerUrl: string;
  let ollamaUrl: string;

  beforeAll(async () => {
    ollama = await startOllamaFixture({ models: [MODEL] });
    ollamaUrl = ollama.url;
    workerUrl = `http://127.0.0.1:${await freePort()}`;
    client = new NodeClient();
  });
  afterAll(async () => {
    client?.close();
    await ollama?.close();
  });

  it("answers from the node's Ollama without calling its Worker API, streaming every token", async () => {
    const stop = client.addInProcessNode({ workerUrl, ollamaUrl: () => ollamaUrl });
    try {
      let streamed = '';
      const outcome = await client.chat({ url: `${workerUrl}/`, token: 'unused' }, ask('hello there'), { signal: new AbortController().signal, onToken: (t) => (streamed += t) });
      expect(outcome.content).toBe('Echo: hello there');
      expect(streamed).toBe(outcome.content);
      expect(outcome.completionTokens).toBe(3);
      expect(ollama.requestsTo('/api/chat').at(-1)).toMatchObject({ body: { model: MODEL, messages: [{ role: 'user', content: 'hello there' }] }, completed: true });
    } finally {
      stop();
    }
  });

  it('goes over HTTP again once the node is gone, and to nodes at other URLs', async () => {
    const stop = client.addInProcessNode({ workerUrl, ollamaUrl: () => ollamaUrl });
    const elsewhere = client.chat({ url: `http://127.0.0.1:${await freePort()}`, token: 't' }, ask('hi'), { signal: new AbortController().signal });
    await expect(elsewhere).rejects.toMatchObject({ transient: true, started: false });
    stop();
    const after = client.chat({ url: workerUrl, token: 't' }, ask('hi'), { signal: new AbortController().signal });
    await expect(after).rejects.toBeInstanceOf(NodeCallError);
    await expect(after).rejects.toMatchObject({ message: expect.stringContaining(workerUrl), transient: true });
  });

  it('aborting the call aborts the generation on Ollama', async () => {
    const stop = client.addInProcessNode({ workerUrl, ollamaUrl: () => ollamaUrl });
    ollama.setBehaviour({ tokenDelayMs: 200 }, { once: true });
    try {
      const abort = new AbortController();
      const call = client.chat({ url: workerUrl, token: 't' }, ask('one two three four five six'), { signal: abort.signal, onToken: () => abort.abort() });
      await expect(call).rejects.toMatchObject({ name: 'AbortError', started: true });
      await until('Ollama to see the abort', async () => ollama.requestsTo('/api/chat').at(-1)?.aborted === true, 10_000, 20);
    } finally {
      stop();
    }
  });

  it('an Ollama that does not answer is a failure worth retrying elsewhere, as through the Worker API', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const stop = client.addInProcessNode({ workerUrl, ollamaUrl: () => down });
    try {
      await expect(client.chat({ url: workerUrl, token: 't' }, ask('hi'), { signal: new AbortController().signal })).rejects.toMatchObject({ transient: true, started: false });
      ollama.setBehaviour({ fail: 1 }, { once: true });
      ollamaUrl = ollama.url;
    } finally {
      stop();
    }
    const stopAgain = client.addInProcessNode({ workerUrl, ollamaUrl: () => ollamaUrl });
    try {
      // A 5xx from Ollama itself: retryable, with its status.
      await expect(client.chat({ url: workerUrl, token: 't' }, ask('hi'), { signal: new AbortController().signal })).rejects.toMatchObject({ transient: true, status: 500 });
    } finally {
      stopAgain();
    }
  });
});
