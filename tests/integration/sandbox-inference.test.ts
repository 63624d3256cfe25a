import { randomUUID } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NodeManager } from '../../node-manager/agent/node-manager';
import { startSandboxInferenceProxy } from '../../node-manager/inference/sandbox-proxy';
import { DockerRunner } from '../../node-manager/sandbox/docker-runner';
import type { SandboxRunSpec } from '../../node-manager/sandbox/runner';
import { startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { SANDBOX_IMAGE, ensureSandboxImage, instanceContainers, tempDir } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startTestNode } from '../support/nodes';
import { until } from '../support/until';

/*
 * Inference from inside a sandbox (README, Inference on nodes): the job reaches its node's model through a
 * proxy on a Unix socket mounted into the sandbox, with a per-job token, while the sandbox keeps
 * no network. The client inside is the image's curl, as a user's script would use it.
 */

const MODEL = 'llama3:8b';
const chatBody = (content: string, model = MODEL) => JSON.stringify({ model, stream: false, messages: [{ role: 'user', content }] });
/** A shell word for a JSON body: single-quoted, and the bodies here hold no single quote. */
const quoted = (s: string) => `'${s}'`;

describe.each(DB_KINDS)('a task asks its node model from inside the sandbox on %s', (kind) => {
  let s: TestServer;
  let ollama: OllamaFixture;
  let node: NodeManager;
  let stateDir: string;

  beforeAll(async () => {
    await ensureSandboxImage();
    ollama = await startOllamaFixture({ models: [MODEL] });
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1 });
    ({ node, stateDir } = await startTestNode(s, `inf-${kind}`, { ollamaHost: ollama.url }));
    await until('the node to be dispatchable', async () => (await s.api.call('/v1/nodes', { token: s.adminToken })).body.nodes.some((n: any) => n.dispatchable), 60_000);
  });
  afterAll(async () => {
    await node?.close();
    await s?.close();
    await ollama?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  const finished = (taskId: string) =>
    until(`task ${taskId} to end`, async () => {
      const r = (await s.api.call(`/v1/tasks/${taskId}/result`, { token: s.adminToken })).body;
      return ['completed', 'failed', 'canceled'].includes(r.status) ? r : undefined;
    }, 60_000);

  it('a commands task with use_inference gets the model answer over the socket, and still cannot open a TCP connection', async () => {
    const prompt = [
      'echo "url=$INFERENCE_PROXY_URL"',
      `curl -sS --unix-socket "$INFERENCE_PROXY_SOCKET" -H "Authorization: Bearer $INFERENCE_PROXY_TOKEN" http://x/api/chat -d ${quoted(chatBody('hello from the sandbox'))}`,
      'echo',
      // curl's 7: it could not connect (busybox's wget is no witness: it crashes offline).
      'curl -s -m 3 -o /dev/null http://1.1.1.1/; echo "tcp=$?"',
    ].join('\n');
    const created = await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt, input_mode: 'commands', use_inference: true, timeout_seconds: 60, image: SANDBOX_IMAGE } });
    expect(created.status).toBe(201);
    const result = await finished(created.body.id);
    expect(result).toMatchObject({ status: 'completed', exit_code: 0 });
    const [urlLine, answerLine, networkLine] = result.stdout.trim().split('\n');
    expect(urlLine).toBe('url=http+unix://%2Frun%2Fcynode%2Finference.sock/');
    expect(JSON.parse(answerLine)).toMatchObject({ model: MODEL, done: true, message: { role: 'assistant', content: 'Echo: hello from the sandbox' } });
    expect(networkLine).toBe('tcp=7');
    // Ollama got the sandbox's own request, and nothing of the proxy's token.
    const seen = ollama.requestsTo('/api/chat').at(-1)!;
    expect(seen.body).toMatchObject({ model: MODEL, messages: [{ role: 'user', content: 'hello from the sandbox' }] });
    expect(JSON.stringify(seen)).not.toMatch(/Bearer/);
  });

  it('a task without use_inference has no socket, no proxy variables and no network', async () => {
    const script = [
      'if [ -e /run/cynode ]; then echo socket=yes; else echo socket=no; fi',
      'echo "url=[$INFERENCE_PROXY_URL] token=[$INFERENCE_PROXY_TOKEN]"',
      // curl's 7: it could not connect, to an address or to a name (no DNS either).
      'curl -s -m 3 -o /dev/null http://1.1.1.1/; echo "tcp=$?"',
      'curl -s -m 3 -o /dev/null --unix-socket /run/cynode/inference.sock http://x/api/tags; echo "socket=$?"',
    ].join('\n');
    const created = await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: script, input_mode: 'script', timeout_seconds: 60, image: SANDBOX_IMAGE } });
    const result = await finished(created.body.id);
    expect(result).toMatchObject({ status: 'completed', stdout: 'socket=no\nurl=[] token=[]\ntcp=7\nsocket=7\n' });
  });
});

describe('the inference proxy as a sandbox sees it', () => {
  const instanceId = `test-${randomUUID()}`;
  let ollama: OllamaFixture;
  let jobsDir: string;
  let runner: DockerRunner;
  /** Host-side socket paths the proxies were started on. */
  const sockets: string[] = [];

  const spec = (script: string, more: Partial<SandboxRunSpec> = {}): SandboxRunSpec => ({
    taskId: `task-${randomUUID()}`,
    jobId: `job-${randomUUID()}`,
    image: SANDBOX_IMAGE,
    command: ['sh', '-c', script],
    env: {},
    timeoutSeconds: 60,
    files: {},
    useInference: true,
    ...more,
  });
  /** One curl through the proxy printing only the status code; `auth` is the Authorization header, if any. */
  const status = (path: string, o: { auth?: string; body?: string } = {}) =>
    [
      'curl -s -o /dev/null -w "%{http_code}\\n" --unix-socket "$INFERENCE_PROXY_SOCKET"',
      o.auth !== undefined ? `-H "Authorization: ${o.auth}"` : '',
      o.body !== undefined ? `-d ${quoted(o.body)}` : '',
      `http://x${path}`,
    ].join(' ');
  const withToken = 'Bearer $INFERENCE_PROXY_TOKEN';

  beforeAll(async () => {
    await ensureSandboxImage();
    ollama = await startOllamaFixture({ models: [MODEL] });
    jobsDir = await tempDir('cynode-jobs-');
    runner = new DockerRunner({
      instanceId,
      jobsDir,
      image: SANDBOX_IMAGE,
      inferenceProxy: (socketPath, token) => {
        sockets.push(socketPath);
        return startSandboxInferenceProxy({ socketPath, token, ollamaUrl: () => ollama.url, maxBodyBytes: 4096, log: () => {} });
      },
    });
  });
  afterEach(async () => {
    // Nothing of a job outlives it: no container, no job directory, no socket.
    await runner.settled();
    expect(await instanceContainers(instanceId)).toEqual([]);
    expect(await readdir(jobsDir)).toEqual([]);
    ollama.requests.length = 0;
  });
  afterAll(async () => {
    await ollama?.close();
    if (jobsDir) await rm(jobsDir, { recursive: true, force: true });
  });

  it('answers only with the job token, only on inference paths, only for the models the node serves', async () => {
    const script = [
      status('/healthz'),
      status('/api/tags'),
      status('/api/chat', { body: chatBody('no token') }),
      status('/api/chat', { auth: 'Bearer not-the-token', body: chatBody('wrong token') }),
      status('/api/tags', { auth: withToken }),
      status('/api/show', { auth: withToken, body: JSON.stringify({ model: MODEL }) }),
      status('/api/embed', { auth: withToken, body: JSON.stringify({ model: MODEL, input: 'x' }) }),
      status('/api/pull', { auth: withToken, body: JSON.stringify({ model: 'qwen3:0.6b' }) }),
      status('/api/version', { auth: withToken }),
      status('/v1/worker/jobs:run', { auth: withToken, body: '{}' }),
      status('/api/chat', { auth: withToken, body: chatBody('who are you', 'not-on-this-node:1b') }),
      status('/api/chat', { auth: withToken, body: chatBody('x'.repeat(5000)) }),
    ].join('\n');
    const out = await runner.run(spec(script));
    expect(out.stderr).toBe('');
    expect(out).toMatchObject({ status: 'completed', exitCode: 0 });
    expect(out.stdout.trim().split('\n')).toEqual(['200', '401', '401', '401', '200', '200', '200', '404', '404', '404', '404', '413']);
    // Refused requests never reached Ollama: no pull, no chat without the token, no unknown model.
    expect(ollama.requestsTo('/api/pull')).toEqual([]);
    expect(ollama.requestsTo('/api/chat')).toEqual([]);
  });

  it('streams a chat answer through the socket as Ollama streams it', async () => {
    const out = await runner.run(
      spec(`curl -sS --unix-socket "$INFERENCE_PROXY_SOCKET" -H "Authorization: ${withToken}" http://x/api/chat -d ${quoted(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'one two three' }] }))}`),
    );
    expect(out).toMatchObject({ status: 'completed', exitCode: 0 });
    const chunks = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.map((c) => c.message?.content ?? '').join('')).toBe('Echo: one two three');
    expect(chunks.at(-1)).toMatchObject({ done: true });
  });

  it('keeps the token and the socket to the node: a caller cannot set them, and they end with the job', async () => {
    const forged = spec('echo "$INFERENCE_PROXY_TOKEN"; echo "$INFERENCE_PROXY_SOCKET"', { env: { INFERENCE_PROXY_TOKEN: 'chosen-by-caller', INFERENCE_PROXY_SOCKET: '/tmp/mine.sock' } });
    const out = await runner.run(forged);
    const [token, socket] = out.stdout.trim().split('\n');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(socket).toBe('/run/cynode/inference.sock');
    await runner.settled();
    const hostSocket = sockets.at(-1)!;
    expect(hostSocket).toBe(join(jobsDir, forged.jobId, 'inference', 'inference.sock'));
    // The proxy stopped with the job: its socket no longer answers.
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      http.get({ socketPath: hostSocket, path: '/healthz' }, () => resolve(new Error('answered') as NodeJS.ErrnoException)).once('error', resolve);
    });
    expect(err.code).toBe('ENOENT');
  });

  it('refuses to start a job asking for inference on a node that offers none', async () => {
    const bare = new DockerRunner({ instanceId, jobsDir, image: SANDBOX_IMAGE });
    const out = await bare.run(spec('echo should not run'));
    await bare.settled();
    expect(out).toMatchObject({ status: 'failed', exitCode: -1, stdout: '' });
    expect(out.stderr).toContain('offers no inference');
  });
});
