import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INFERENCE_PATHS } from '../../node-manager/contract/worker-api';
import { ollamaBaseUrl } from '../../node-manager/inference/ollama-host';
import { DockerRunner } from '../../node-manager/sandbox/docker-runner';
import { startWorkerApi, type WorkerApi } from '../../node-manager/worker-api/server';
import { answerText, startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { SANDBOX_IMAGE, tempDir } from '../support/docker';
import { until } from '../support/until';

/* The Worker API's inference routes (INFERENCE_PATHS) against a fixture that speaks Ollama's API. */

const TOKEN = `worker-token-${randomUUID()}`;
const MODEL = 'llama3:8b';

const lines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));

describe('Worker API inference routes with an Ollama fixture', () => {
  let ollama: OllamaFixture;
  let ollamaUrl: string;
  let api: WorkerApi;
  let stateDir: string;

  /** Like ApiClient.call, but NDJSON stays text (a stream of documents, not one). */
  const call = async (path: string, body?: unknown, token: string | null = TOKEN) => {
    const res = await fetch(api.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = /json/.test(res.headers.get('content-type') ?? '') && !/ndjson/.test(res.headers.get('content-type') ?? '') && text !== '';
    return { status: res.status, headers: res.headers, text, body: json ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    ollama = await startOllamaFixture({ models: [MODEL] });
    ollamaUrl = ollama.url;
    stateDir = await tempDir('cynode-inference-');
    api = await startWorkerApi({
      host: '127.0.0.1',
      port: 0,
      runner: new DockerRunner({ instanceId: `test-${randomUUID()}`, jobsDir: join(stateDir, 'jobs'), image: SANDBOX_IMAGE }),
      nodeSlug: 'inference-node',
      defaultImage: SANDBOX_IMAGE,
      getBearerToken: () => TOKEN,
      stateDir,
      logLevel: 'silent',
      ollamaUrl: () => ollamaUrl,
    });
  });
  afterAll(async () => {
    await api?.close();
    await ollama?.close();
    await rm(stateDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    ollama.setBehaviour({});
    ollama.requests.length = 0;
  });

  it('answers a non-streaming chat as Ollama does, passing unknown fields on', async () => {
    const body = { model: MODEL, stream: false, messages: [{ role: 'user', content: 'hello there world' }], options: { temperature: 0, seed: 7 }, keep_alive: '5m', made_up: { x: 1 } };
    const res = await call(INFERENCE_PATHS.chat, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.body).toMatchObject({ model: MODEL, done: true, done_reason: 'stop', message: { role: 'assistant', content: 'Echo: hello there world' } });
    // What Ollama received is exactly what was sent.
    expect(ollama.requestsTo('/api/chat').map((r) => r.body)).toEqual([body]);
  });

  it('streams a chat as NDJSON, chunk for chunk (Ollama streams when `stream` is absent)', async () => {
    const body = { model: MODEL, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'one two three four' }] };
    const res = await call(INFERENCE_PATHS.chat, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const chunks = lines(res.text);
    expect(chunks.map((c) => c.message.content)).toEqual(['Echo: ', 'one ', 'two ', 'three ', 'four', '']);
    expect(chunks.map((c) => c.done)).toEqual([false, false, false, false, false, true]);
    expect(chunks.at(-1)).toMatchObject({ done_reason: 'stop', eval_count: 5 });
    expect(chunks.slice(0, -1).map((c) => c.message.content).join('')).toBe(answerText(body));
  });

  it('delivers tokens as they come, not the whole answer at the end', async () => {
    ollama.setBehaviour({ tokenDelayMs: 300 });
    const res = await fetch(api.url + INFERENCE_PATHS.chat, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'a b c d e f g h' }] }),
    });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    // The first chunk arrived while the fixture was still generating the rest.
    expect(lines(first)[0].message.content).toBe('Echo: ');
    expect(ollama.requestsTo('/api/chat')[0]!.completed).toBe(false);
    await reader.cancel();
  });

  it("passes Ollama's errors on: unknown model 404, server error 500", async () => {
    const missing = await call(INFERENCE_PATHS.chat, { model: 'nope:1b', messages: [{ role: 'user', content: 'hi' }] });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: "model 'nope:1b' not found" });

    ollama.setBehaviour({ fail: 1 }, { once: true });
    const failing = await call(INFERENCE_PATHS.chat, { model: MODEL, stream: false, messages: [{ role: 'user', content: 'hi' }] });
    expect(failing.status).toBe(500);
    expect(failing.body).toEqual({ error: 'fixture: simulated failure' });
  });

  it('refuses bodies without what routing needs, and callers without the token', async () => {
    const noMessages = await call(INFERENCE_PATHS.chat, { model: MODEL });
    expect(noMessages.status).toBe(400);
    expect(noMessages.headers.get('content-type')).toContain('application/problem+json');
    expect((await call(INFERENCE_PATHS.pull, {})).status).toBe(400);
    for (const path of [INFERENCE_PATHS.chat, INFERENCE_PATHS.pull, INFERENCE_PATHS.delete]) {
      expect((await call(path, { model: MODEL, messages: [] }, null)).status).toBe(401);
      expect((await call(path, { model: MODEL, messages: [] }, 'wrong')).status).toBe(401);
    }
    expect((await call(INFERENCE_PATHS.models, undefined, null)).status).toBe(401);
    expect(ollama.requests).toEqual([]);
  });

  it('aborts the generation on the node when the caller goes away mid-stream', async () => {
    ollama.setBehaviour({ tokenDelayMs: 200 });
    const controller = new AbortController();
    const res = await fetch(api.url + INFERENCE_PATHS.chat, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ') }] }),
      signal: controller.signal,
    });
    await res.body!.getReader().read();
    controller.abort();
    const seen = await until('the fixture to see the abort', async () => ollama.requestsTo('/api/chat')[0]?.aborted, 30_000);
    expect(seen).toBe(true);
    expect(ollama.requestsTo('/api/chat')[0]!.completed).toBe(false);
  });

  it('aborts a request the model has not begun to answer when the caller goes away', async () => {
    ollama.setBehaviour({ hang: true });
    const controller = new AbortController();
    const pending = fetch(api.url + INFERENCE_PATHS.chat, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
      signal: controller.signal,
    }).catch((e: Error) => e);
    await until('the fixture to get the request', async () => ollama.requestsTo('/api/chat').length > 0, 30_000);
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    await until('the fixture to see the abort', async () => ollama.requestsTo('/api/chat')[0]?.aborted, 30_000);
  });

  it('pulls with progress streamed, lists and deletes models', async () => {
    const pull = await call(INFERENCE_PATHS.pull, { model: 'qwen3:0.6b' });
    expect(pull.status).toBe(200);
    expect(pull.headers.get('content-type')).toBe('application/x-ndjson');
    const progress = lines(pull.text);
    expect(progress[0]).toEqual({ status: 'pulling manifest' });
    expect(progress.filter((p) => p.total !== undefined).map((p) => p.completed)).toEqual([0, 1000, 2000, 3000]);
    expect(progress.at(-1)).toEqual({ status: 'success' });

    const models = await call(INFERENCE_PATHS.models);
    expect(models.status).toBe(200);
    expect(models.body.models.map((m: any) => m.name)).toEqual(['llama3:8b', 'qwen3:0.6b']);
    expect(models.body.models[0]).toMatchObject({ name: MODEL, model: MODEL, size: expect.any(Number), digest: expect.stringMatching(/^sha256:/), details: expect.any(Object) });

    const del = await call(INFERENCE_PATHS.delete, { model: 'qwen3:0.6b' });
    expect(del.status).toBe(200);
    expect(ollama.requestsTo('/api/delete')[0]).toMatchObject({ method: 'DELETE', body: { model: 'qwen3:0.6b' } });
    const again = await call(INFERENCE_PATHS.delete, { model: 'qwen3:0.6b' });
    expect(again.status).toBe(404);
    expect(again.body).toEqual({ error: "model 'qwen3:0.6b' not found" });
    expect([...ollama.models]).toEqual([MODEL]);
  });

  it("answers 503 'inference is not running on this node' when Ollama does not answer", async () => {
    const down = await startOllamaFixture();
    const url = down.url;
    await down.close();
    ollamaUrl = url;
    try {
      for (const [path, body] of [
        [INFERENCE_PATHS.chat, { model: MODEL, messages: [{ role: 'user', content: 'hi' }] }],
        [INFERENCE_PATHS.pull, { model: MODEL }],
        [INFERENCE_PATHS.models, undefined],
      ] as const) {
        const res = await call(path, body);
        expect(res.status).toBe(503);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
        expect(res.body.detail).toBe('inference is not running on this node');
      }
    } finally {
      ollamaUrl = ollama.url;
    }
  });
});

describe('OLLAMA_HOST as the Ollama CLI reads it', () => {
  it.each([
    [undefined, 'http://127.0.0.1:11434'],
    ['', 'http://127.0.0.1:11434'],
    ['127.0.0.1:11500', 'http://127.0.0.1:11500'],
    ['gpu-box.lan', 'http://gpu-box.lan:11434'],
    [':9999', 'http://127.0.0.1:9999'],
    ['0.0.0.0', 'http://127.0.0.1:11434'],
    ['http://gpu-box.lan:11434/', 'http://gpu-box.lan:11434'],
    ['https://ollama.example.com', 'https://ollama.example.com'],
    ['http://ollama.example.com', 'http://ollama.example.com'],
    ['[::1]:11434', 'http://[::1]:11434'],
  ])('%s -> %s', (raw, url) => {
    expect(ollamaBaseUrl(raw)).toBe(url);
  });
  it('refuses other schemes', () => {
    expect(() => ollamaBaseUrl('ftp://x')).toThrow(/OLLAMA_HOST/);
  });
});
