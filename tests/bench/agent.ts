/**
 * The project-manager agent's own cost (issue 16): a `cynodeai.pm` turn through the gateway
 * (auth, the backing-model check, the turn's session and agent token, the tool list, per step the
 * model call through the node, the tool loop, policy, MCP dispatch with its audit, the thread
 * writes) minus the time the model server itself spent answering. The Ollama fixture answers at
 * once with scripted read-only calls (`task.list`, no sandbox runs), then with text; each of its
 * /api/chat requests is timed from its own arrival to the end of its answer, and that time is
 * what is subtracted. What remains is CyNode's: gateway, node hop and loop together.
 */
import type OpenAI from 'openai';
import { startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { servedGateway } from './served-gateway';
import { summarize, type Summary } from './stats';

const MODEL = 'bench-agent-model';
const PM = 'cynodeai.pm';
const SAMPLES = Number(process.env.BENCH_SAMPLES || 60);
/** Tool steps per turn in the two shapes measured; the answer is one more step (the default step limit is 8). */
const SHAPES = [1, 6];
const TARGET_MS = 10;
const f1 = (n: number) => n.toFixed(1);

interface Turn {
  total: number;
  model: number;
  steps: number;
  /** Other requests the model server got during the turn (capability checks, the node's probes). */
  other: string[];
}

/** One turn of `toolSteps` read-only calls then an answer; the model's time from the fixture's own clock. */
async function turn(client: OpenAI, fixture: OllamaFixture, toolSteps: number, n: number): Promise<Turn> {
  // A different limit each step: the loop refuses a call repeated with the same arguments.
  for (let i = 0; i < toolSteps; i++) fixture.setBehaviour({ toolCalls: [{ name: 'task.list', arguments: { limit: i + 1 } }], toolCallsAnyTurn: true }, { once: true });
  const before = fixture.requests.length;
  const t0 = performance.now();
  const res = await client.chat.completions.create({ model: PM, messages: [{ role: 'user', content: `q${n}: list my tasks` }] });
  const total = performance.now() - t0;
  const during = fixture.requests.slice(before);
  const chats = during.filter((r) => r.path === '/api/chat');
  const answer = res.choices[0]?.message.content ?? '';
  if (chats.length !== toolSteps + 1 || !answer.startsWith('Echo tool: ')) throw new Error(`unexpected turn: ${chats.length} model calls, answer ${answer.slice(0, 200)}`);
  const model = chats.reduce((sum, r) => {
    if (r.finishedAt === undefined) throw new Error('a model call did not finish');
    return sum + (r.finishedAt - r.receivedAt);
  }, 0);
  return { total, model, steps: chats.length, other: during.filter((r) => r.path !== '/api/chat').map((r) => r.path) };
}

const row = (label: string, s: Summary) => `| ${label} | ${f1(s.p50)} | ${f1(s.p95)} | ${f1(s.p99)} |`;

export async function agentBench(): Promise<void> {
  const fixture = await startOllamaFixture({ models: [{ name: MODEL, capabilities: ['completion', 'tools'] }] });
  const served = await servedGateway('agent', fixture.url, PM);
  try {
    const { client } = served;
    let n = 0;
    // Warm every path (connections, JIT, the capability cache).
    for (let i = 0; i < 5; i++) for (const steps of SHAPES) await turn(client, fixture, steps, ++n);

    console.log(`${PM} turns, ${SAMPLES} sequential turns per shape (alternating); read-only task.list steps, then an answer; the fixture answers at once`);
    console.log('CyNode time = turn time minus the model server\'s own time for its /api/chat answers (fixture clock); per step = that / model calls\n');
    console.log('| ms | p50 | p95 | p99 |');
    console.log('|---|---|---|---|');
    const by = new Map<number, Turn[]>(SHAPES.map((s) => [s, []]));
    for (let i = 0; i < SAMPLES; i++) for (const steps of SHAPES) by.get(steps)!.push(await turn(client, fixture, steps, ++n));
    const p50s = new Map<number, number>();
    const others: string[] = [];
    for (const steps of SHAPES) {
      const turns = by.get(steps)!;
      const label = `${steps} tool step${steps > 1 ? 's' : ''} + answer (${steps + 1} model calls)`;
      const overhead = turns.map((t) => t.total - t.model);
      console.log(row(`${label}: model server`, summarize(turns.map((t) => t.model))));
      console.log(row(`${label}: CyNode per turn`, summarize(overhead)));
      const perStep = summarize(turns.map((t) => (t.total - t.model) / t.steps));
      console.log(row(`${label}: **CyNode per step**`, perStep));
      p50s.set(steps, summarize(overhead).p50);
      const other = new Map<string, number>();
      for (const t of turns) for (const path of t.other) other.set(path, (other.get(path) ?? 0) + 1);
      others.push(`${steps} tool step${steps > 1 ? 's' : ''}: ${[...other].map(([path, count]) => `${path} ${f1(count / turns.length)}`).join(', ') || 'none'}`);
    }
    const [few, many] = [SHAPES[0]!, SHAPES[SHAPES.length - 1]!];
    const marginal = (p50s.get(many)! - p50s.get(few)!) / (many - few);
    console.log(`\nEach further tool step (model call, loop, policy, MCP dispatch and audit, thread writes) adds p50 ${f1(marginal)} ms of CyNode time.`);
    console.log(`Other requests to the model server per turn (not subtracted; the node's heartbeat probes included): ${others.join('; ')}`);
    console.log(`Target: < ${TARGET_MS} ms of CyNode time per step, sandbox runs excluded (the node hop to the model server is counted as CyNode's).`);
  } finally {
    await served.close();
    await fixture.close();
  }
}
