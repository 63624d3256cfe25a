import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dataFiles } from '../../server/config/config';
import type { Db } from '../../server/db';
import { workerTokenContext } from '../../server/nodes/store';
import { Vault } from '../../server/vault/envelope';
import { MasterKey } from '../../server/vault/master-key';
import { DockerRunner } from '../../node-manager/sandbox/docker-runner';
import { startWorkerApi, type WorkerApi } from '../../node-manager/worker-api/server';
import { startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { SANDBOX_IMAGE, tempDir } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { until } from '../support/until';

/*
 * The OpenAI-compatible endpoint end to end: the official openai SDK against the gateway, a real
 * Worker API as the node (its row written as registration and an `applied` ack leave it), and
 * the Ollama fixture behind that node.
 */

const MODEL = 'llama3:8b';
const OTHER_MODEL = 'qwen3:8b';

/** Fake but realistic secrets of every supported kind, with the prose around them. */
const SECRETS = {
  openai: 'sk-proj-Q7x2Lm9Vb4Nc8Zt1Rw6Ys3Kd0Hf5Jg2Pa7Eo4Iu9Ty1Re6Wq3Ds8Fg0Hj5Kl2Zx7Cv4Bn9Mm1',
  anthropic: 'sk-ant-api03-Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Qw6Er8Ty0Ui2Op4As6Df8Gh0Jk2Lz4Xc6Vb8Nm0Qa2Ws4Ed6Rf8Tg0Yh2Uj4IkAA',
  github: 'ghp_8Zk2Lq9Xw4Vb7Nc1Rt5Ym3Hs6Jd0Fg2Pa4Eo',
  gitlab: 'glpat-x7Yq2Vb9Nc4Lm8Zt1Rw6',
  slack: 'xoxb-482910375628-5829103746251-Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4',
  google: 'AIzaSyD4x9Qm2Lv7Nc3Zt8Rw1Ys6Kd0Hf5Jg2Pa',
  awsId: 'AKIA4QX7ZL2M9VB3NC8T',
  awsSecret: 'Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q',
  jwt: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MjQyIiwibmFtZSI6IkFkYSJ9.Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Qw6',
  bearer: '9f8e7d6c5b4a3f2e1d0c',
  password: 'Hunter2Secret!',
  urlPassword: 'S3cr3t-Pass',
  pemBody: 'MIIEowIBAAKCAQEAq7Zt8Rw1Ys6Kd0Hf5Jg2Pa7Eo4Iu9Ty1Re6Wq3Ds8Fg0Hj5Kl2Zx',
};
const PROSE = 'Please review my deployment notes carefully.';
const SECRET_MESSAGE = [
  PROSE,
  `openai ${SECRETS.openai} anthropic ${SECRETS.anthropic}`,
  `github ${SECRETS.github} gitlab ${SECRETS.gitlab} slack ${SECRETS.slack} google ${SECRETS.google}`,
  `AWS_ACCESS_KEY_ID=${SECRETS.awsId}`,
  `AWS_SECRET_ACCESS_KEY=${SECRETS.awsSecret}`,
  `session ${SECRETS.jwt}`,
  `Authorization: Bearer ${SECRETS.bearer}`,
  `password=${SECRETS.password}`,
  `repo https://deploy:${SECRETS.urlPassword}@git.example.com/app.git`,
  `-----BEGIN RSA PRIVATE KEY-----\n${SECRETS.pemBody}\n-----END RSA PRIVATE KEY-----`,
].join('\n');

describe.each(DB_KINDS)('OpenAI-compatible chat on %s', (kind) => {
  let s: TestServer;
  let db: Db;
  let vault: Vault;
  let ollama: OllamaFixture;
  let worker: WorkerApi;
  let stateDir: string;
  let nodeId: string;
  let heartbeat: NodeJS.Timeout;
  let client: OpenAI;
  /** How many of the next calls the node refuses, as one that has not applied its latest token yet. */
  let refuseNext = 0;

  beforeAll(async () => {
    s = await startTestServer(kind, { chatTimeoutSeconds: 3, chatKeepaliveSeconds: 1 });
    db = s.cynode.db;
    vault = new Vault(await MasterKey.fromFile(dataFiles.masterKey(s.config.dataDir)));
    ollama = await startOllamaFixture({ models: [MODEL, OTHER_MODEL] });
    stateDir = await tempDir('cynode-chat-node-');
    const token = `worker-token-${randomUUID()}`;
    worker = await startWorkerApi({
      host: '127.0.0.1',
      port: 0,
      runner: new DockerRunner({ instanceId: `chat-test-${randomUUID()}`, jobsDir: join(stateDir, 'jobs'), image: SANDBOX_IMAGE }),
      nodeSlug: 'chat-node',
      defaultImage: SANDBOX_IMAGE,
      getBearerToken: () => {
        if (refuseNext === 0) return token;
        refuseNext--;
        return 'the-token-of-an-earlier-registration';
      },
      stateDir,
      logLevel: 'silent',
      ollamaUrl: () => ollama.url,
    });
    nodeId = randomUUID();
    // A node row as registration, config delivery, an `applied` ack and an inference report leave it.
    await db.query(
      `INSERT INTO nodes (id, node_slug, status, admin_state, worker_api_target_url, worker_api_token_ciphertext, config_version, config_ack_version,
                          config_ack_status, config_ack_at, capability, max_concurrency, last_seen_at, labels)
       VALUES ($1, 'chat-node', 'active', 'enabled', $2, $3, 'cfg-1', 'cfg-1', 'applied', now(), $4, 2, now(), '["orchestrator_host"]')`,
      [nodeId, worker.url, vault.seal(token, workerTokenContext(nodeId)), JSON.stringify({ sandbox: { supported: true }, inference: { supported: true, running: true, available_models: [MODEL, OTHER_MODEL] } })],
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
  afterEach(async () => {
    await db.query(`UPDATE nodes SET admin_state = 'enabled' WHERE id = $1`, [nodeId]);
  });

  const auditOf = async (requestId: string) => (await db.query<any>('SELECT * FROM chat_audit_log WHERE request_id = $1', [requestId]))[0];
  const lastChat = () => ollama.requestsTo('/api/chat').at(-1)!;

  it('lists the models of the nodes serving inference, in OpenAI list shape', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual([MODEL, OTHER_MODEL]);
    expect(page.data[0]).toMatchObject({ id: MODEL, object: 'model', owned_by: 'cynode', created: expect.any(Number) });
    expect(page.data.map((m) => m.id)).not.toContain('cynodeai.pm');
  });

  it('answers a completion with the exact content, usage and the OpenAI shape; unknown fields are ignored', async () => {
    const res = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello there world', name: 'ada' },
      ],
      temperature: 0,
      user: 'someone',
      // @ts-expect-error: a field OpenAI may add tomorrow
      made_up_field: { x: 1 },
    });
    expect(res.id).toMatch(/^chatcmpl-/);
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe(MODEL);
    expect(res.choices).toEqual([{ index: 0, message: { role: 'assistant', content: 'Echo: hello there world' }, finish_reason: 'stop' }]);
    expect(res.usage).toMatchObject({ completion_tokens: 4, prompt_tokens: expect.any(Number) });
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + 4);
    // The model got the whole (redacted) conversation and the options.
    expect(lastChat().body).toMatchObject({ model: MODEL, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello there world' }], options: { temperature: 0 } });
  });

  it('streams deltas as the node produces them, then finish_reason, usage and [DONE]', async () => {
    ollama.setBehaviour({ tokenDelayMs: 150 });
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'one two three four' }], stream: true, stream_options: { include_usage: true } });
    const deltas: string[] = [];
    let roles = 0;
    let finish: string | null = null;
    let usage: unknown;
    let completedAtFirstDelta: boolean | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta.role) roles++;
      if (choice.delta.content) {
        // The first token reached us while the fixture was still producing the rest.
        if (completedAtFirstDelta === undefined) completedAtFirstDelta = lastChat().completed;
        deltas.push(choice.delta.content);
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    expect(deltas).toEqual(['Echo: ', 'one ', 'two ', 'three ', 'four']);
    expect(deltas.join('')).toBe('Echo: one two three four');
    expect(completedAtFirstDelta).toBe(false);
    expect(roles).toBe(1);
    expect(finish).toBe('stop');
    expect(usage).toMatchObject({ completion_tokens: 5 });
  });

  it('answers an unknown model with 404 model_not_found and a bad request with 400', async () => {
    const unknown = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect(unknown).toMatchObject({ status: 404, code: 'model_not_found', type: 'cynodeai_error' });

    const empty = await client.chat.completions.create({ model: MODEL, messages: [] }).catch((e: unknown) => e);
    expect(empty).toBeInstanceOf(OpenAI.BadRequestError);
    expect(empty).toMatchObject({ status: 400, code: 'invalid_request' });
    // No model means the project manager agent, which no node runs yet: a clear 503.
    const noModel = await client.chat.completions.create({ model: '', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(noModel).toMatchObject({ status: 503, code: 'cynodeai_inference_unavailable', message: expect.stringContaining('cynodeai.pm') });
    const pm = await client.chat.completions.create({ model: 'cynodeai.pm', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(pm).toMatchObject({ status: 503, code: 'cynodeai_inference_unavailable' });
    const badRole = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'wizard' as 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(badRole).toBeInstanceOf(OpenAI.BadRequestError);

    // Raw: the OpenAI error shape, never problem details.
    const raw = await s.api.call('/v1/chat/completions', { token: s.adminToken, body: { model: MODEL } });
    expect(raw.status).toBe(400);
    expect(raw.body).toEqual({ error: { message: expect.any(String), type: 'cynodeai_error', param: null, code: 'invalid_request' } });
    const noAuth = await s.api.call('/v1/models');
    expect(noAuth.status).toBe(401);
    expect(noAuth.body.error).toMatchObject({ type: 'cynodeai_error', code: 'authentication_required' });
  });

  it('warms a model on the node that would answer it: 202 warming, then already_warm; unknown models 404', async () => {
    const loads = () => ollama.requestsTo('/api/chat').filter((r) => Array.isArray(r.body?.messages) && r.body.messages.length === 0 && r.body.model === OTHER_MODEL);
    const before = loads().length;
    const first = await s.api.call('/v1/chat/warm', { token: s.adminToken, body: { model: OTHER_MODEL } });
    expect(first).toMatchObject({ status: 202, body: { status: 'warming', model: OTHER_MODEL } });
    await until('the node was asked to load the model', async () => loads().length > before);
    expect((await s.api.call(`/v1/chat/warm?model=${encodeURIComponent(OTHER_MODEL)}`, { token: s.adminToken, body: {} })).body).toEqual({ status: 'already_warm', model: OTHER_MODEL });
    expect(loads().length).toBe(before + 1);

    const unknown = await s.api.call('/v1/chat/warm', { token: s.adminToken, body: { model: 'no-such-model' } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ type: 'cynodeai_error', code: 'model_not_found' });
    expect((await s.api.call('/v1/chat/warm', { body: { model: OTHER_MODEL } })).body.error).toMatchObject({ code: 'authentication_required' });
  });

  it('takes a personal API key as the credential', async () => {
    const key = await s.api.call('/v1/api-keys', { token: s.adminToken, body: { name: 'openai-sdk' } });
    expect(key.status).toBe(201);
    const viaKey = new OpenAI({ baseURL: `${s.cynode.gatewayUrl}/v1`, apiKey: key.body.key, maxRetries: 0 });
    expect((await viaKey.models.list()).data.map((m) => m.id)).toContain(MODEL);
    const res = await viaKey.chat.completions.create({ model: OTHER_MODEL, messages: [{ role: 'user', content: 'via key' }] });
    expect(res.choices[0]!.message.content).toBe('Echo: via key');
  });

  it('redacts every kind of secret before storing or sending; prose stays; the audit row has no content', async () => {
    const requestId = `redact-${randomUUID()}`;
    const res = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'system', content: `system knows ${SECRETS.github}` }, { role: 'user', content: SECRET_MESSAGE }] }, { headers: { 'x-request-id': requestId } });
    const sent = JSON.stringify(lastChat().body);
    const answer = res.choices[0]!.message.content!;
    const audit = await auditOf(requestId);
    const stored = await db.query<{ role: string; content: string; metadata: any }>('SELECT role, content, metadata FROM chat_messages WHERE thread_id = $1 ORDER BY created_at, id', [audit.thread_id]);
    const storedText = JSON.stringify(stored);
    for (const [name, secret] of Object.entries(SECRETS)) {
      expect(sent, name).not.toContain(secret);
      expect(storedText, name).not.toContain(secret);
      expect(answer, name).not.toContain(secret);
    }
    expect(sent).toContain('SECRET_REDACTED');
    expect(sent).toContain(PROSE);
    expect(sent).toContain('AWS_SECRET_ACCESS_KEY=SECRET_REDACTED');
    expect(sent).toContain('https://deploy:SECRET_REDACTED@git.example.com/app.git');
    expect(sent).toContain('system knows SECRET_REDACTED');
    const user = stored.filter((m) => m.role === 'user').at(-1)!;
    expect(user.content.startsWith(PROSE)).toBe(true);
    expect(user.content).toContain('password=SECRET_REDACTED');
    expect(stored.at(-1)).toMatchObject({ role: 'assistant', metadata: { model: MODEL, node_id: nodeId } });

    expect(audit).toMatchObject({ outcome: 'success', error_code: null, model: MODEL, node_id: nodeId, redaction_applied: true, attempts: 1, stream: false });
    expect([...audit.redaction_kinds].sort()).toEqual(['api_key', 'password', 'private_key', 'token']);
    expect(audit.duration_ms).toEqual(expect.any(Number));
    const auditText = JSON.stringify(await db.query('SELECT * FROM chat_audit_log'));
    expect(auditText).not.toContain('SECRET_REDACTED');
    expect(auditText).not.toContain(PROSE);
    expect(auditText).not.toContain('Echo');
  });

  it('aborts the generation on the node when the client aborts mid-stream; audit says canceled', async () => {
    ollama.setBehaviour({ tokenDelayMs: 300 });
    const requestId = `abort-${randomUUID()}`;
    const abort = new AbortController();
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'a b c d e f g h i j' }], stream: true }, { signal: abort.signal, headers: { 'x-request-id': requestId } });
    const got: string[] = [];
    // The SDK ends the iteration quietly (or throws, depending on timing) once the signal fires.
    try {
      for await (const chunk of stream) {
        const c = chunk.choices[0]?.delta.content;
        if (c) {
          got.push(c);
          abort.abort();
        }
      }
    } catch (err) {
      expect(String(err)).toMatch(/abort/i);
    }
    expect(got).toEqual(['Echo: ']);
    const upstream = lastChat();
    await until('the upstream generation to be aborted', async () => upstream.aborted);
    expect(upstream.completed).toBe(false);
    const audit = await until('the audit row', () => auditOf(requestId));
    expect(audit).toMatchObject({ outcome: 'canceled', error_code: 'cynodeai_request_canceled', node_id: nodeId, stream: true });
    // Nothing half-done is stored as the answer.
    const messages = await db.query<{ role: string }>('SELECT role FROM chat_messages WHERE thread_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1', [audit.thread_id]);
    expect(messages[0]!.role).toBe('user');
  });

  it('answers 504 cynodeai_completion_timeout when the node hangs, and aborts the generation', async () => {
    ollama.setBehaviour({ hang: true });
    const requestId = `hang-${randomUUID()}`;
    const err = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'are you there' }] }, { headers: { 'x-request-id': requestId } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ status: 504, code: 'cynodeai_completion_timeout' });
    await until('the hanging generation to be aborted', async () => lastChat().aborted);
    expect(await auditOf(requestId)).toMatchObject({ outcome: 'timeout', error_code: 'cynodeai_completion_timeout' });
  });

  it('sends the error as one SSE event when a stream times out after it started', async () => {
    ollama.setBehaviour({ hang: true });
    const res = await fetch(`${s.cynode.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'slow' }] }),
    });
    // Keep-alives (every second here) started the stream before the 3 s cap.
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text();
    expect(text).toContain(': keepalive');
    const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
    expect(JSON.parse(events.at(-1)!.slice(6))).toEqual({ error: { message: expect.any(String), type: 'cynodeai_error', param: null, code: 'cynodeai_completion_timeout' } });
  });

  it('retries a failing node and answers 502 cynodeai_inference_failed when it keeps failing', async () => {
    ollama.setBehaviour({ fail: 3 });
    const before = ollama.requestsTo('/api/chat').length;
    const requestId = `fail-${randomUUID()}`;
    const err = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'fail' }] }, { headers: { 'x-request-id': requestId } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err).toMatchObject({ status: 502, code: 'cynodeai_inference_failed' });
    // The node's address and what it said are for the admin's log, not for the caller.
    const said = (err as InstanceType<typeof OpenAI.InternalServerError>).message;
    expect(said).toMatch(/Inference failed on the node serving this model/);
    for (const leak of [new URL(worker.url).host, '/v1/worker', 'simulated failure']) expect(said).not.toContain(leak);
    expect(ollama.requestsTo('/api/chat').length - before).toBe(3);
    expect(await auditOf(requestId)).toMatchObject({ outcome: 'error', error_code: 'cynodeai_inference_failed', attempts: 3 });
  });

  it('succeeds when the node recovers within the retries', async () => {
    ollama.setBehaviour({ fail: 2 });
    const requestId = `recover-${randomUUID()}`;
    const res = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'third time lucky' }] }, { headers: { 'x-request-id': requestId } });
    expect(res.choices[0]!.message.content).toBe('Echo: third time lucky');
    expect(await auditOf(requestId)).toMatchObject({ outcome: 'success', attempts: 3 });
  });

  it('answers 503 cynodeai_inference_unavailable when no node serves inference', async () => {
    await db.query(`UPDATE nodes SET admin_state = 'disabled' WHERE id = $1`, [nodeId]);
    const err = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'anyone?' }] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'cynodeai_inference_unavailable' });
    expect((await client.models.list()).data).toEqual([]);
  });

  it('answers prompt tasks by inference: the answer is the result stdout; the prompt is redacted; an unknown model fails clearly', async () => {
    const ended = (id: string) =>
      until(`task ${id} to end`, async () => {
        const res = await s.api.call(`/v1/tasks/${id}`, { token: s.adminToken });
        return res.body.closed ? res.body : null;
      });
    const t = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'What is 2+2? my token=abc123def456' } })).body;
    expect(t.status).toBe('queued');
    expect(await ended(t.id)).toMatchObject({ status: 'completed', failure_reason: null });
    const result = (await s.api.call(`/v1/tasks/${t.id}/result`, { token: s.adminToken })).body;
    expect(result).toMatchObject({ status: 'completed', stdout: 'Echo: What is 2+2? my token=SECRET_REDACTED', stderr: '', exit_code: 0 });
    expect(result.jobs).toEqual([expect.objectContaining({ status: 'completed', node_id: nodeId, attempt: 1 })]);
    expect(JSON.parse(result.jobs[0].result)).toMatchObject({ status: 'completed', model: MODEL, node_slug: 'chat-node' });
    expect(JSON.stringify(lastChat().body)).not.toContain('abc123def456');

    const withModel = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'which model', model: OTHER_MODEL } })).body;
    expect(await ended(withModel.id)).toMatchObject({ status: 'completed' });
    expect(lastChat().body.model).toBe(OTHER_MODEL);

    const unknown = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'x', model: 'no-such-model' } })).body;
    expect(await ended(unknown.id)).toMatchObject({ status: 'failed', failure_reason: expect.stringContaining('no-such-model') });
    const failed = (await s.api.call(`/v1/tasks/${unknown.id}/result`, { token: s.adminToken })).body;
    expect(failed.jobs).toEqual([expect.objectContaining({ status: 'failed', failure_code: 'model_not_found' })]);
  });

  it("fails a prompt task its node cannot answer with a plain reason, without the node's address or words", async () => {
    ollama.setBehaviour({ fail: 3 });
    const t = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'this will not be answered' } })).body;
    const done = await until(`task ${t.id} to end`, async () => {
      const res = await s.api.call(`/v1/tasks/${t.id}`, { token: s.adminToken });
      return res.body.closed ? res.body : null;
    });
    expect(done).toMatchObject({ status: 'failed', failure_reason: 'Inference failed on node "chat-node"; an admin finds the details in the server log.' });
    const failed = (await s.api.call(`/v1/tasks/${t.id}/result`, { token: s.adminToken })).body;
    expect(failed.jobs).toEqual([expect.objectContaining({ status: 'failed', failure_code: 'inference_failed' })]);
    for (const leak of [new URL(worker.url).host, '/v1/worker', 'simulated failure']) expect(JSON.stringify(failed)).not.toContain(leak);
  });

  it('answers a prompt task whose node has not yet applied the token of its latest registration', async () => {
    refuseNext = 1;
    const t = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'after a new registration' } })).body;
    const done = await until(`task ${t.id} to end`, async () => {
      const res = await s.api.call(`/v1/tasks/${t.id}`, { token: s.adminToken });
      return res.body.closed ? res.body : null;
    });
    expect(refuseNext).toBe(0);
    expect(done).toMatchObject({ status: 'completed', failure_reason: null });
  });

  it('cancels a prompt task while it is being answered: the generation is aborted', async () => {
    ollama.setBehaviour({ hang: true });
    const t = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'think forever', timeout_seconds: 60 } })).body;
    await until('the job to run', async () => (await db.query<any>('SELECT status FROM jobs WHERE task_id = $1', [t.id]))[0]?.status === 'running');
    await until('the node to be asked', async () => ollama.requestsTo('/api/chat').some((r) => r.body?.messages?.[0]?.content === 'think forever'));
    expect((await s.api.call(`/v1/tasks/${t.id}/cancel`, { token: s.adminToken, method: 'POST' })).status).toBe(200);
    await until('the generation to be aborted', async () => ollama.requestsTo('/api/chat').find((r) => r.body?.messages?.[0]?.content === 'think forever')?.aborted);
    const job = await until('the job to end', async () => {
      const j = (await db.query<any>('SELECT status FROM jobs WHERE task_id = $1', [t.id]))[0];
      return j.status !== 'running' ? j : null;
    });
    expect(job.status).toBe('canceled');
  });

  it('resolves the project from OpenAI-Project: unknown 404, not allowed 403, allowed by slug', async () => {
    const unknown = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }, { headers: { 'OpenAI-Project': 'no-such-project' } }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ status: 404, code: 'project_not_found' });
    const created = await s.api.call('/v1/projects', { token: s.adminToken, body: { slug: 'chat-proj', display_name: 'Chat project' } });
    expect(created.status).toBe(201);
    const res = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'in project' }] }, { headers: { 'OpenAI-Project': 'chat-proj' } });
    expect(res.choices[0]!.message.content).toBe('Echo: in project');
    const threads = await s.api.call(`/v1/chat/threads?project_id=${created.body.id}`, { token: s.adminToken });
    expect(threads.body.threads).toHaveLength(1);

    // A viewer sees the project but may not chat in it.
    const vera = await s.createUser('vera');
    const bound = await s.api.call('/v1/role-bindings', { token: s.adminToken, body: { subject_type: 'user', subject_id: vera.id, role: 'viewer', scope_type: 'project', scope_id: created.body.id } });
    expect(bound.status).toBe(201);
    const asVera = new OpenAI({ baseURL: `${s.cynode.gatewayUrl}/v1`, apiKey: vera.token, maxRetries: 0 });
    const denied = await asVera.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }, { headers: { 'OpenAI-Project': 'chat-proj' } }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(denied).toMatchObject({ status: 403, code: 'permission_denied' });
    // Her own default project is hers to chat in.
    expect((await asVera.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'mine' }] })).choices[0]!.message.content).toBe('Echo: mine');
  });

  /** A completion sent as JSON text, with a request id of its own to find its audit row by. */
  const completion = async (token: string, rawBody: string) => {
    const requestId = `c-${randomUUID()}`;
    return { requestId, ...(await s.api.call('/v1/chat/completions', { token, rawBody, headers: { 'x-request-id': requestId } })) };
  };

  it("one user's values the database refuses fail only their own completions; another user's concurrent ones are answered and every one audited", async () => {
    const mallory = await s.createUser('mallory');
    // Both have an active thread: their next messages are appends that share statements.
    for (const token of [s.adminToken, mallory.token]) expect((await completion(token, JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hello' }] }))).status).toBe(200);
    const refusable = [
      JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x\u0000y' }] }),
      JSON.stringify({ model: `${MODEL}\u0000`, messages: [{ role: 'user', content: 'hi' }] }),
      JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x\ud800y' }] }),
      `{"model":"${MODEL}","messages":[{"role":"user","content":"hi","name":${'['.repeat(10_000)}${']'.repeat(10_000)}}]}`,
    ];
    const answered = Array.from({ length: 20 }, (_, i) => completion(s.adminToken, JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `question ${i}` }] })));
    // Answered 404, and audited like every completion.
    const unknownModel = Array.from({ length: 10 }, () => completion(s.adminToken, JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] })));
    const refused = Array.from({ length: 20 }, (_, i) => completion(mallory.token, refusable[i % refusable.length]!));
    const [ok, notFound, bad] = await Promise.all([Promise.all(answered), Promise.all(unknownModel), Promise.all(refused)]);

    expect(ok.map((r) => r.status)).toEqual(Array(20).fill(200));
    ok.forEach((r, i) => expect(r.body.choices[0].message.content).toBe(`Echo: question ${i}`));
    expect(notFound.map((r) => r.status)).toEqual(Array(10).fill(404));
    expect(bad.map((r) => r.status)).toEqual(Array(20).fill(400));
    for (const r of bad) expect(r.body).toEqual({ error: { message: expect.stringMatching(/^body\./), type: 'cynodeai_error', param: null, code: 'invalid_request' } });
    for (const r of ok) expect(await auditOf(r.requestId)).toMatchObject({ outcome: 'success', model: MODEL });
    for (const r of notFound) expect(await auditOf(r.requestId)).toMatchObject({ outcome: 'error', error_code: 'model_not_found' });
  });

  it('a completion whose audit row cannot be written fails with 500 instead of answering as if it had been audited', async () => {
    const requestId = `unauditable-${randomUUID()}`;
    // The database refuses this one request's audit row, and only it.
    await db.exec(`ALTER TABLE chat_audit_log ADD CONSTRAINT refuse_one_row CHECK (request_id <> '${requestId}') NOT VALID`);
    try {
      const res = await s.api.call('/v1/chat/completions', { token: s.adminToken, body: { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }, headers: { 'x-request-id': requestId } });
      expect(res.status).toBe(500);
      expect(res.body.error).toMatchObject({ type: 'cynodeai_error', code: 'cynodeai_internal_error' });
    } finally {
      await db.exec('ALTER TABLE chat_audit_log DROP CONSTRAINT refuse_one_row');
    }
  });
});
