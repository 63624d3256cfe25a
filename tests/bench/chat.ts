/**
 * Streaming chat through the gateway (auth, redaction, thread writes, routing, the node's
 * Worker API, SSE) beside the same request straight to the model server, against the Ollama
 * fixture answering as fast as it can: time to first token and tokens per second at 1, 16 and
 * 64 concurrent streams. The official OpenAI SDK is the gateway's client, as for LAN clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type OpenAI from 'openai';
import { startOllamaFixture } from '../fixtures/ollama-fixture';
import { servedGateway } from './served-gateway';
import { percentile } from './stats';

const ms = (n: number) => `${n.toFixed(1)} ms`;

const MODEL = 'bench-model';
// A hundred words: the fixture echoes them back as a hundred tokens. Each request's first word is
// its own, so every request is a new message to redact (the gateway remembers the redaction of a
// conversation's earlier messages, which a repeated prompt would be).
const WORDS = Array.from({ length: 99 }, (_, i) => `word${i}`).join(' ');
let asked = 0;
const prompt = () => `q${++asked} ${WORDS}`;
const SEQUENTIAL = Number(process.env.BENCH_SAMPLES || 30);

interface Stream {
  ttftMs: number;
  tokens: number;
  totalMs: number;
}

/**
 * A streamed answer, timed: `separator` splits the body into messages (NDJSON lines, SSE
 * events); `read` says whether one carries content and how many tokens the model server counted
 * for the whole answer (its last message). Tokens are the model's count, not messages: the
 * gateway may pass several tokens in one event.
 */
async function timeStream(t0: number, res: Response, separator: string, read: (message: string) => { content: boolean; tokens?: number }): Promise<Stream> {
  let ttft = 0;
  let tokens = 0;
  let rest = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) {
    rest += decoder.decode(chunk, { stream: true });
    const messages = rest.split(separator);
    rest = messages.pop()!;
    for (const message of messages) {
      const m = read(message);
      if (m.content && ttft === 0) ttft = performance.now() - t0;
      if (m.tokens !== undefined) tokens = m.tokens;
    }
  }
  return { ttftMs: ttft, tokens, totalMs: performance.now() - t0 };
}

const body = () => ({ model: MODEL, messages: [{ role: 'user' as const, content: prompt() }], stream: true });
const gatewayBody = () => ({ ...body(), stream_options: { include_usage: true } });

async function direct(fixtureUrl: string): Promise<Stream> {
  const t0 = performance.now();
  const res = await fetch(`${fixtureUrl}/api/chat`, { method: 'POST', body: JSON.stringify(body()) });
  return timeStream(t0, res, '\n', (line) => {
    if (!line) return { content: false };
    const m = JSON.parse(line) as { message?: { content?: string }; eval_count?: number };
    return { content: !!m.message?.content, tokens: m.eval_count };
  });
}

/** The gateway with the same bare client as `direct`: what the gateway adds, without the SDK's own cost. */
async function gatewayBare(url: string, token: string): Promise<Stream> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(gatewayBody()),
  });
  return timeStream(t0, res, '\n\n', (event) => {
    if (!event.startsWith('data: {')) return { content: false };
    const m = JSON.parse(event.slice(6)) as { choices?: Array<{ delta?: { content?: string } }>; usage?: { completion_tokens: number } };
    return { content: !!m.choices?.[0]?.delta?.content, tokens: m.usage?.completion_tokens };
  });
}

async function gateway(client: OpenAI): Promise<Stream> {
  const t0 = performance.now();
  const stream = await client.chat.completions.create({ ...gatewayBody(), stream: true });
  let ttft = 0;
  let tokens = 0;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content && ttft === 0) ttft = performance.now() - t0;
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  return { ttftMs: ttft, tokens, totalMs: performance.now() - t0 };
}

/** tests/bench/bare-proxy.ts in a process of its own, in front of the fixture. */
async function startBareProxy(ollamaUrl: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./bare-proxy.ts', import.meta.url)), ollamaUrl], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    const m = /listening (http:\/\/\S+)/.exec(out);
    if (m) return { url: m[1]!, child };
  }
  throw new Error(`the bare proxy did not start: ${out}`);
}

interface Round {
  ttft: number[];
  tokensPerSecond: number;
  errors: number;
}

async function round(f: () => Promise<Stream>, concurrency: number, samples: number): Promise<Round> {
  const ttft: number[] = [];
  let tokens = 0;
  let errors = 0;
  const t0 = performance.now();
  for (let done = 0; done < samples; done += concurrency) {
    const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, samples - done) }, f));
    for (const r of results) {
      if (r.status === 'fulfilled') {
        ttft.push(r.value.ttftMs);
        tokens += r.value.tokens;
      } else errors++;
    }
  }
  return { ttft, tokensPerSecond: (tokens / (performance.now() - t0)) * 1000, errors };
}

export async function chatBench(): Promise<void> {
  const fixture = await startOllamaFixture({ models: [MODEL] });
  const served = await servedGateway('chat', fixture.url, MODEL, { CYNODE_MAX_CONCURRENT_REQUESTS: '10000' });
  const proxy = await startBareProxy(fixture.url);
  try {
    const { client, token, server } = served;
    // Warm both paths (connections, JIT).
    for (let i = 0; i < 5; i++) await Promise.all([direct(fixture.url), gatewayBare(proxy.url, token), gateway(client), gatewayBare(server.gatewayUrl, token)]);

    console.log(`fixture answering without delay; ${WORDS.split(' ').length + 2}-token answers; time to first token (TTFT) from request start\n`);
    console.log('gateway (SDK) = the official OpenAI SDK as LAN clients use it; gateway (bare) = the same bare fetch client as direct');
    console.log('bare proxy = the floor: node:http NDJSON-to-SSE passing, nothing else (tests/bench/bare-proxy.ts), with the bare client\n');
    console.log('| streams | client | TTFT p50 / p99 | added p50 / p99 | tok/s | ratio | errors |');
    console.log('|---|---|---|---|---|---|---|');
    for (const n of [1, 16, 64]) {
      const samples = n === 1 ? SEQUENTIAL : n * 3;
      const d = await round(() => direct(fixture.url), n, samples);
      const rows: Array<[string, Round]> = [
        ['direct', d],
        ['bare proxy', await round(() => gatewayBare(proxy.url, token), n, samples)],
        ['gateway (bare)', await round(() => gatewayBare(server.gatewayUrl, token), n, samples)],
        ['gateway (SDK)', await round(() => gateway(client), n, samples)],
      ];
      const [d50, d99] = [percentile(d.ttft, 50), percentile(d.ttft, 99)];
      for (const [label, r] of rows) {
        const [p50, p99] = [percentile(r.ttft, 50), percentile(r.ttft, 99)];
        const added = label === 'direct' ? '' : `${(p50 - d50).toFixed(1)} / ${(p99 - d99).toFixed(1)} ms`;
        const ratio = label === 'direct' ? '' : (r.tokensPerSecond / d.tokensPerSecond).toFixed(2);
        console.log(`| ${n} | ${label} | ${ms(p50)} / ${ms(p99)} | ${added} | ${r.tokensPerSecond.toFixed(0)} | ${ratio} | ${r.errors} |`);
      }
    }
  } finally {
    proxy.child.kill();
    await served.close();
    await fixture.close();
  }
}
