/**
 * A streamed tool call through the gateway (auth, redaction, the capability check, routing, the
 * node, minting ids and fragmenting arguments into OpenAI's SSE) beside the same request straight
 * to the model server's /api/chat, against the Ollama fixture answering at once with one call:
 * the time to the first tool-call delta, and what the gateway adds to it.
 */
import type OpenAI from 'openai';
import { startOllamaFixture } from '../fixtures/ollama-fixture';
import { servedGateway } from './served-gateway';
import { percentile } from './stats';

const MODEL = 'bench-tools-model';
const SAMPLES = Number(process.env.BENCH_SAMPLES || 50);
const TOOLS = [
  {
    type: 'function' as const,
    function: { name: 'create_task', description: 'Create a task', parameters: { type: 'object', properties: { title: { type: 'string' }, priority: { type: 'integer' } }, required: ['title'] } },
  },
];
let asked = 0;
const messages = () => [{ role: 'user' as const, content: `q${++asked} create a task for the release notes` }];

/** Reads a stream until `first` says a message carries a tool call; the rest is drained. */
async function timeToCall(t0: number, res: Response, separator: string, first: (message: string) => boolean): Promise<number> {
  let at = 0;
  let rest = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) {
    rest += decoder.decode(chunk, { stream: true });
    const parts = rest.split(separator);
    rest = parts.pop()!;
    for (const p of parts) if (at === 0 && first(p)) at = performance.now() - t0;
  }
  if (at === 0) throw new Error('the stream brought no tool call');
  return at;
}

async function direct(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/api/chat`, { method: 'POST', body: JSON.stringify({ model: MODEL, messages: messages(), tools: TOOLS, stream: true }) });
  return timeToCall(t0, res, '\n', (line) => line !== '' && Array.isArray((JSON.parse(line) as { message?: { tool_calls?: unknown } }).message?.tool_calls));
}

async function gatewayBare(url: string, token: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: messages(), tools: TOOLS, stream: true }),
  });
  return timeToCall(t0, res, '\n\n', (event) => event.startsWith('data: {') && (JSON.parse(event.slice(6)) as { choices?: Array<{ delta?: { tool_calls?: unknown } }> }).choices?.[0]?.delta?.tool_calls !== undefined);
}

async function gatewaySdk(client: OpenAI): Promise<number> {
  const t0 = performance.now();
  const stream = await client.chat.completions.create({ model: MODEL, messages: messages(), tools: TOOLS, stream: true });
  let at = 0;
  for await (const chunk of stream) if (at === 0 && chunk.choices[0]?.delta?.tool_calls) at = performance.now() - t0;
  if (at === 0) throw new Error('the stream brought no tool call');
  return at;
}

export async function toolsOpenAiBench(): Promise<void> {
  const fixture = await startOllamaFixture({ models: [{ name: MODEL, capabilities: ['completion', 'tools'] }] });
  fixture.setBehaviour({ toolCalls: [{ name: 'create_task', arguments: { title: 'Write the release notes', priority: 2 } }] });
  const served = await servedGateway('tools', fixture.url, MODEL);
  try {
    const { client, token, server } = served;
    // Warm every path (connections, JIT, the capability cache).
    for (let i = 0; i < 5; i++) await Promise.all([direct(fixture.url), gatewayBare(server.gatewayUrl, token), gatewaySdk(client)]);

    console.log(`OpenAI tool calling: ${SAMPLES} sequential streamed requests each; the fixture answers at once with one call; time to the first tool-call delta\n`);
    console.log('| client | p50 / p95 / p99 | added p50 / p95 / p99 |');
    console.log('|---|---|---|');
    const rows: Array<[string, () => Promise<number>]> = [
      ['direct (Ollama /api/chat)', () => direct(fixture.url)],
      ['gateway (bare fetch)', () => gatewayBare(server.gatewayUrl, token)],
      ['gateway (openai SDK)', () => gatewaySdk(client)],
    ];
    let base: number[] | undefined;
    for (const [label, f] of rows) {
      const times: number[] = [];
      for (let i = 0; i < SAMPLES; i++) times.push(await f());
      const ps = [50, 95, 99].map((p) => percentile(times, p));
      base ??= ps;
      const added = label.startsWith('direct') ? '' : ps.map((p, i) => (p - base![i]!).toFixed(1)).join(' / ') + ' ms';
      console.log(`| ${label} | ${ps.map((p) => p.toFixed(1)).join(' / ')} ms | ${added} |`);
    }
  } finally {
    await served.close();
    await fixture.close();
  }
}
