import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dataFiles } from '../../server/config/config';
import type { Db } from '../../server/db';
import { workerTokenContext } from '../../server/nodes/store';
import { Vault } from '../../server/vault/envelope';
import { MasterKey } from '../../server/vault/master-key';
import { DockerRunner } from '../../node-manager/sandbox/docker-runner';
import { startWorkerApi, type WorkerApi } from '../../node-manager/worker-api/server';
import { embeddingOf, startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { SANDBOX_IMAGE, tempDir } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/*
 * Tool calling, JSON mode, images and embeddings on the OpenAI-compatible endpoint, with the
 * official openai SDK against the gateway, a real Worker API as the node, and the Ollama fixture
 * (scripted tool calls, per-model capabilities) behind it.
 */

const TOOLS_MODEL = 'llama3.1:8b';
const VISION_MODEL = 'llava:7b';
const PLAIN_MODEL = 'phi3:mini';
const EMBED_MODEL = 'nomic-embed-text';
/** Listed by the node, unknown to its Ollama: /api/show fails for it. */
const GHOST_MODEL = 'ghost:1b';

const GITHUB_TOKEN = 'ghp_8Zk2Lq9Xw4Vb7Nc1Rt5Ym3Hs6Jd0Fg2Pa4Eo';
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

const weather: ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] } },
};
const time: ChatCompletionTool = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } } };

describe.each(DB_KINDS)('OpenAI tool calling, JSON mode, images, embeddings on %s', (kind) => {
  let s: TestServer;
  let db: Db;
  let ollama: OllamaFixture;
  let worker: WorkerApi;
  let stateDir: string;
  let nodeId: string;
  let heartbeat: NodeJS.Timeout;
  let client: OpenAI;

  beforeAll(async () => {
    s = await startTestServer(kind, { chatTimeoutSeconds: 5, chatKeepaliveSeconds: 1 });
    db = s.cynode.db;
    const vault = new Vault(await MasterKey.fromFile(dataFiles.masterKey(s.config.dataDir)));
    ollama = await startOllamaFixture({
      models: [
        { name: TOOLS_MODEL, capabilities: ['completion', 'tools'] },
        { name: VISION_MODEL, capabilities: ['completion', 'vision'] },
        PLAIN_MODEL,
        { name: EMBED_MODEL, capabilities: ['embedding'] },
      ],
    });
    stateDir = await tempDir('cynode-tools-node-');
    const token = `worker-token-${randomUUID()}`;
    worker = await startWorkerApi({
      host: '127.0.0.1',
      port: 0,
      runner: new DockerRunner({ instanceId: `tools-test-${randomUUID()}`, jobsDir: join(stateDir, 'jobs'), image: SANDBOX_IMAGE }),
      nodeSlug: 'tools-node',
      defaultImage: SANDBOX_IMAGE,
      getBearerToken: () => token,
      stateDir,
      logLevel: 'silent',
      ollamaUrl: () => ollama.url,
    });
    nodeId = randomUUID();
    const models = [TOOLS_MODEL, VISION_MODEL, PLAIN_MODEL, EMBED_MODEL, GHOST_MODEL];
    await db.query(
      `INSERT INTO nodes (id, node_slug, status, admin_state, worker_api_target_url, worker_api_token_ciphertext, config_version, config_ack_version,
                          config_ack_status, config_ack_at, capability, max_concurrency, last_seen_at, labels)
       VALUES ($1, 'tools-node', 'active', 'enabled', $2, $3, 'cfg-1', 'cfg-1', 'applied', now(), $4, 2, now(), '["orchestrator_host"]')`,
      [nodeId, worker.url, vault.seal(token, workerTokenContext(nodeId)), JSON.stringify({ sandbox: { supported: true }, inference: { supported: true, running: true, available_models: models } })],
    );
    heartbeat = setInterval(() => void db.query('UPDATE nodes SET last_seen_at = now() WHERE id = $1', [nodeId]).catch(() => {}), 500);
    client = new OpenAI({ baseURL: `${s.cynode.gatewayUrl}/v1`, apiKey: s.adminToken, maxRetries: 0 });
  });
  afterAll(async () => {
    clearInterval(heartbeat);
    await s?.close();
    await worker?.close();
    await ollama?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    ollama.setBehaviour({});
  });

  const lastChat = () => ollama.requestsTo('/api/chat').at(-1)!;

  it('answers a tool call in OpenAI shape: minted id, JSON string arguments, content null, finish_reason tool_calls', async () => {
    ollama.setBehaviour({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo', days: 3 } }] }, { once: true });
    const res = await client.chat.completions.create({ model: TOOLS_MODEL, messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [weather], tool_choice: 'auto' });
    const choice = res.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0]!;
    expect(call).toMatchObject({ id: expect.stringMatching(/^call_[A-Za-z0-9_-]+$/), type: 'function', function: { name: 'get_weather' } });
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ city: 'Oslo', days: 3 });
    // The node got the tools in Ollama's shape.
    expect(lastChat().body.tools).toEqual([weather]);
  });

  it('streams tool calls as OpenAI does: a first delta with index, id, type, name; arguments in fragments; then finish_reason tool_calls', async () => {
    const calls = [
      { name: 'get_weather', arguments: { city: 'Zürich ☀', days: 2 } },
      { name: 'get_time', arguments: { zone: 'Europe/Oslo' } },
    ];
    ollama.setBehaviour({ toolCalls: calls }, { once: true });
    const stream = await client.chat.completions.create({ model: TOOLS_MODEL, messages: [{ role: 'user', content: 'Weather and time?' }], tools: [weather, time], stream: true });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    const firsts = deltas.filter((d) => d.id !== undefined);
    expect(firsts).toEqual([
      { index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '' } },
      { index: 1, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_time', arguments: '' } },
    ]);
    expect(firsts[0]!.id).not.toBe(firsts[1]!.id);
    for (const [i, c] of calls.entries()) {
      const pieces = deltas.filter((d) => d.index === i && d.id === undefined).map((d) => d.function!.arguments!);
      // Really fragments: a client that does not join them gets no valid JSON.
      expect(pieces.length).toBeGreaterThan(1);
      expect(JSON.parse(pieces.join(''))).toEqual(c.arguments);
    }
    expect(chunks.at(-1)!.choices[0]).toMatchObject({ delta: {}, finish_reason: 'tool_calls' });
  });

  it("reassembles with the SDK's stream helper, and runTools runs a two-turn exchange with role tool", async () => {
    ollama.setBehaviour({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Bergen' } }] }, { once: true });
    const final = await client.chat.completions.stream({ model: TOOLS_MODEL, messages: [{ role: 'user', content: 'Bergen?' }], tools: [weather] }).finalChatCompletion();
    const call = final.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ city: 'Bergen' });
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');

    ollama.setBehaviour({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Tromsø', days: 1 } }] }, { once: true });
    const seen: unknown[] = [];
    const runner = client.chat.completions.runTools({
      model: TOOLS_MODEL,
      stream: true,
      messages: [{ role: 'user', content: 'Tromsø?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'The weather in a city',
            parameters: weather.type === 'function' ? weather.function.parameters! : {},
            parse: JSON.parse,
            function: (args: { city: string }) => {
              seen.push(args);
              return `snow in ${args.city}`;
            },
          },
        },
      ],
    });
    expect(await runner.finalContent()).toBe('Echo tool: snow in Tromsø');
    expect(seen).toEqual([{ city: 'Tromsø', days: 1 }]);
    // The second turn reached the node in Ollama's shape: object arguments, tool_name found from the call.
    const msgs = lastChat().body.messages;
    expect(msgs.at(-2)).toMatchObject({ role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Tromsø', days: 1 } } }] });
    expect(msgs.at(-2).tool_calls[0].id).toBeUndefined();
    expect(msgs.at(-1)).toEqual({ role: 'tool', content: 'snow in Tromsø', tool_name: 'get_weather' });
  });

  it('takes tool results back by hand (content null on the assistant), redacts secrets in them, and stores the turn as tool messages', async () => {
    const requestId = `tools-${randomUUID()}`;
    const res = await client.chat.completions.create(
      {
        model: TOOLS_MODEL,
        tools: [weather],
        messages: [
          { role: 'user', content: 'Deploy it' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: JSON.stringify({ city: `token ${GITHUB_TOKEN}` }) } }] },
          { role: 'tool', tool_call_id: 'call_abc', content: `the key is ${GITHUB_TOKEN} ok` },
        ],
      },
      { headers: { 'x-request-id': requestId } },
    );
    expect(res.choices[0]!.message.content).toBe('Echo tool: the key is SECRET_REDACTED ok');
    expect(res.choices[0]!.finish_reason).toBe('stop');
    const sent = JSON.stringify(lastChat().body);
    expect(sent).not.toContain(GITHUB_TOKEN);
    expect(lastChat().body.messages[1].tool_calls[0].function.arguments).toEqual({ city: 'token SECRET_REDACTED' });
    expect(lastChat().body.messages[2]).toMatchObject({ role: 'tool', tool_name: 'get_weather' });

    const audit = (await db.query<any>('SELECT * FROM chat_audit_log WHERE request_id = $1', [requestId]))[0];
    const stored = await db.query<{ role: string; content: string; metadata: any }>('SELECT role, content, metadata FROM chat_messages WHERE thread_id = $1 ORDER BY created_at, id', [audit.thread_id]);
    expect(JSON.stringify(stored)).not.toContain(GITHUB_TOKEN);
    expect(stored.at(-2)).toMatchObject({ role: 'tool', content: 'the key is SECRET_REDACTED ok', metadata: { tool_call_id: 'call_abc', tool_name: 'get_weather' } });
    expect(stored.at(-1)).toMatchObject({ role: 'assistant', content: 'Echo tool: the key is SECRET_REDACTED ok' });
  });

  it('maps tool_choice: none sends no tools, a named function sends only it; an unknown name is a 400', async () => {
    await client.chat.completions.create({ model: TOOLS_MODEL, messages: [{ role: 'user', content: 'x' }], tools: [weather, time], tool_choice: 'none' });
    expect(lastChat().body.tools).toBeUndefined();
    await client.chat.completions.create({ model: TOOLS_MODEL, messages: [{ role: 'user', content: 'x' }], tools: [weather, time], tool_choice: { type: 'function', function: { name: 'get_time' } } });
    expect(lastChat().body.tools).toEqual([time]);
    const unknown = await client.chat.completions.create({ model: TOOLS_MODEL, messages: [{ role: 'user', content: 'x' }], tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } } }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ status: 400, code: 'invalid_request', message: expect.stringContaining('tool_choice') });
  });

  it('passes on only the first call with parallel_tool_calls false', async () => {
    ollama.setBehaviour({ toolCalls: [{ name: 'get_weather', arguments: { city: 'A' } }, { name: 'get_time', arguments: {} }] }, { once: true });
    const res = await client.chat.completions.create({ model: TOOLS_MODEL, messages: [{ role: 'user', content: 'x' }], tools: [weather, time], parallel_tool_calls: false });
    expect(res.choices[0]!.message.tool_calls!.map((c) => c.type === 'function' && c.function.name)).toEqual(['get_weather']);
  });

  it('refuses tools for a model without the tools capability (400 model_capability), asking /api/show once', async () => {
    const showsBefore = ollama.requestsTo('/api/show').length;
    for (let i = 0; i < 2; i++) {
      const err = await client.chat.completions.create({ model: PLAIN_MODEL, messages: [{ role: 'user', content: 'x' }], tools: [weather] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err).toMatchObject({ status: 400, code: 'model_capability', type: expect.stringMatching(/model_capability$/), param: 'tools' });
      expect((err as Error).message).toContain(PLAIN_MODEL);
      expect((err as Error).message).toContain('tools');
    }
    expect(ollama.requestsTo('/api/show').length - showsBefore).toBe(1);
    // Plain chat asks nothing.
    const shows = ollama.requestsTo('/api/show').length;
    expect((await client.chat.completions.create({ model: PLAIN_MODEL, messages: [{ role: 'user', content: 'plain' }] })).choices[0]!.message.content).toBe('Echo: plain');
    expect(ollama.requestsTo('/api/show').length).toBe(shows);
  });

  it('maps response_format to Ollama format; a bad one is a 400 naming the field', async () => {
    await client.chat.completions.create({ model: PLAIN_MODEL, messages: [{ role: 'user', content: 'json please' }], response_format: { type: 'json_object' } });
    expect(lastChat().body.format).toBe('json');
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
    await client.chat.completions.create({ model: PLAIN_MODEL, messages: [{ role: 'user', content: 'schema please' }], response_format: { type: 'json_schema', json_schema: { name: 'a', schema } } });
    expect(lastChat().body.format).toEqual(schema);
    await client.chat.completions.create({ model: PLAIN_MODEL, messages: [{ role: 'user', content: 'text please' }], response_format: { type: 'text' } });
    expect(lastChat().body.format).toBeUndefined();
    const bad = await s.api.call('/v1/chat/completions', { token: s.adminToken, body: { model: PLAIN_MODEL, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'yaml' } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('response_format.type') });
    const noSchema = await s.api.call('/v1/chat/completions', { token: s.adminToken, body: { model: PLAIN_MODEL, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'a' } } } });
    expect(noSchema.body.error.message).toContain('response_format.json_schema.schema');
  });

  it('sends data-URL image parts to a vision model as images; refuses them for other models and refuses http URLs', async () => {
    const content = [
      { type: 'text' as const, text: 'What is this?' },
      { type: 'image_url' as const, image_url: { url: `data:image/png;base64,${PNG}` } },
    ];
    const res = await client.chat.completions.create({ model: VISION_MODEL, messages: [{ role: 'user', content }] });
    expect(res.choices[0]!.message.content).toBe('Echo: What is this?');
    expect(lastChat().body.messages[0]).toEqual({ role: 'user', content: 'What is this?', images: [PNG] });

    const plain = await client.chat.completions.create({ model: PLAIN_MODEL, messages: [{ role: 'user', content }] }).catch((e: unknown) => e);
    expect(plain).toMatchObject({ status: 400, code: 'model_capability', param: 'vision' });
    const http = await client.chat.completions.create({ model: VISION_MODEL, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://example.com/cat.png' } }] }] }).catch((e: unknown) => e);
    expect(http).toMatchObject({ status: 400, code: 'invalid_request', message: expect.stringContaining('messages[0].content[0].image_url.url') });
  });

  it('answers embeddings in float and in base64 (the SDK default, decoded by it), redacting the input', async () => {
    const texts = ['hello world', 'second text'];
    const asFloat = await client.embeddings.create({ model: EMBED_MODEL, input: texts, encoding_format: 'float' });
    expect(asFloat).toMatchObject({ object: 'list', model: EMBED_MODEL, usage: { prompt_tokens: 4, total_tokens: 4 } });
    expect(asFloat.data).toEqual(texts.map((t, index) => ({ object: 'embedding', index, embedding: embeddingOf(t) })));

    const viaSdkDefault = await client.embeddings.create({ model: EMBED_MODEL, input: 'hello world' });
    expect(viaSdkDefault.data[0]!.embedding).toEqual(embeddingOf('hello world'));
    const raw = await s.api.call('/v1/embeddings', { token: s.adminToken, body: { model: EMBED_MODEL, input: 'hello world', encoding_format: 'base64', dimensions: 4 } });
    expect(typeof raw.body.data[0].embedding).toBe('string');
    const buf = Buffer.from(raw.body.data[0].embedding, 'base64');
    expect(Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4))).toEqual(embeddingOf('hello world', 4));

    await client.embeddings.create({ model: EMBED_MODEL, input: `my token ${GITHUB_TOKEN}` });
    expect(ollama.requestsTo('/api/embed').at(-1)!.body.input).toEqual(['my token SECRET_REDACTED']);
  });

  it('refuses embeddings from a model without the embedding capability, an unknown model, and a bad input', async () => {
    const chatModel = await client.embeddings.create({ model: PLAIN_MODEL, input: 'x' }).catch((e: unknown) => e);
    expect(chatModel).toMatchObject({ status: 400, code: 'model_capability', param: 'embedding' });
    const unknown = await client.embeddings.create({ model: 'no-such-model', input: 'x' }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ status: 404, code: 'model_not_found' });
    const bad = await s.api.call('/v1/embeddings', { token: s.adminToken, body: { model: EMBED_MODEL, input: [1, 2, 3] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('input') });
  });

  it('fails closed when the node cannot say what a model can do: 502, and no generation', async () => {
    const chats = ollama.requestsTo('/api/chat').length;
    const err = await client.chat.completions.create({ model: GHOST_MODEL, messages: [{ role: 'user', content: 'x' }], tools: [weather] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 502, code: 'cynodeai_inference_failed', message: expect.stringContaining(GHOST_MODEL) });
    expect(ollama.requestsTo('/api/chat').length).toBe(chats);
  });

  it('applies the model.use rules to embeddings as to chat: a model kept from the caller is a 404 and reaches no node', async () => {
    const outsider = await s.createUser(`embed-outsider-${kind}`);
    const rule = await s.api.call('/v1/policy/rules', {
      token: s.adminToken,
      body: { name: `No embeddings for ${kind}`, text: `forbid (principal == User::"${outsider.id}", action == Action::"model.use", resource == Model::"${EMBED_MODEL}");` },
    });
    expect(rule.status, rule.text).toBe(201);
    const embeds = ollama.requestsTo('/api/embed').length;
    const viaOutsider = new OpenAI({ baseURL: `${s.cynode.gatewayUrl}/v1`, apiKey: outsider.token, maxRetries: 0 });
    const refused = await viaOutsider.embeddings.create({ model: EMBED_MODEL, input: 'x' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 404, code: 'model_not_found' });
    expect(ollama.requestsTo('/api/embed').length).toBe(embeds);
    expect((await client.embeddings.create({ model: EMBED_MODEL, input: 'x' })).data).toHaveLength(1);
  });

  it('refuses malformed tools and tool messages with a 400 naming the field, before any node is asked', async () => {
    const chats = ollama.requestsTo('/api/chat').length;
    const user = { role: 'user', content: 'x' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ tools: [{ type: 'function', function: { name: 'has space' } }] }, 'tools[0].function.name'],
      [{ tools: [{ type: 'retrieval' }] }, 'tools[0]'],
      [{ tools: { get_weather: {} } }, 'tools must be an array'],
      [{ tools: [weather], tool_choice: 'sometimes' }, 'tool_choice'],
      [{ messages: [user, { role: 'tool', content: 'result' }] }, 'messages[1].tool_call_id'],
      [{ messages: [user, { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{not json' } }] }] }, 'messages[1].tool_calls[0].function.arguments'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:text/plain;base64,aGk=' } }] }] }, 'messages[0].content[0].image_url.url'],
    ];
    for (const [extra, field] of cases) {
      const res = await s.api.call('/v1/chat/completions', { token: s.adminToken, body: { model: TOOLS_MODEL, messages: [user], ...extra } });
      expect(res.status, field).toBe(400);
      expect(res.body.error, field).toMatchObject({ code: 'invalid_request', message: expect.stringContaining(field) });
    }
    expect(ollama.requestsTo('/api/chat').length).toBe(chats);
  });
});
