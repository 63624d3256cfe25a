import { INFERENCE_PATHS } from '../../../node-manager/contract/worker-api';
import { NodeCallError, TRANSIENT_CODES, saidIn, transientStatus, trimSlashes } from './call-error';
import { ndjsonLines } from './ndjson';
import type { NodeTarget } from './worker-calls';

/** One model, or one line of a pull's progress, as the node's Ollama gives it (fields unchecked). */
export type OllamaEntry = Record<string, unknown>;

/**
 * Model management calls (INFERENCE_PATHS: models, pull, delete). They are short, or stream
 * progress at once, so fetch's limits do not get in the way. A refusal is a NodeCallError with the
 * node's status and what it said; the caller's own abort is passed on as fetch raises it.
 */
export async function listModels(target: NodeTarget, signal: AbortSignal): Promise<OllamaEntry[]> {
  const body = (await (await call(target, 'GET', INFERENCE_PATHS.models, undefined, signal)).json()) as { models?: unknown };
  return Array.isArray(body.models) ? (body.models as OllamaEntry[]) : [];
}

/** What the node's Ollama says of a model (/api/show): its `capabilities` (`tools`, `vision`, `embedding`…). */
export async function showModel(target: NodeTarget, model: string, signal: AbortSignal): Promise<{ capabilities: string[] }> {
  const body = (await (await call(target, 'POST', INFERENCE_PATHS.show, { model }, signal)).json()) as { capabilities?: unknown };
  return { capabilities: Array.isArray(body.capabilities) ? body.capabilities.filter((c): c is string => typeof c === 'string') : [] };
}

/** An Ollama /api/embed request. */
export interface OllamaEmbedRequest {
  model: string;
  input: string[];
  dimensions?: number;
}

export interface EmbedOutcome {
  embeddings: number[][];
  promptTokens: number;
}

/** Embeddings of each input, in order, from the node's Ollama (/api/embed). */
export async function embed(target: NodeTarget, body: OllamaEmbedRequest, signal: AbortSignal): Promise<EmbedOutcome> {
  const answer = (await (await call(target, 'POST', INFERENCE_PATHS.embed, body, signal)).json()) as { embeddings?: unknown; prompt_eval_count?: unknown };
  const embeddings = answer.embeddings;
  const ok = Array.isArray(embeddings) && embeddings.length === body.input.length && embeddings.every((e) => Array.isArray(e) && e.every((x) => typeof x === 'number'));
  if (!ok) throw new NodeCallError(`${where(target, INFERENCE_PATHS.embed)} answered without one embedding per input`, false, { status: 502 });
  return { embeddings: embeddings as number[][], promptTokens: typeof answer.prompt_eval_count === 'number' ? answer.prompt_eval_count : 0 };
}

export async function deleteModel(target: NodeTarget, model: string, signal: AbortSignal): Promise<void> {
  await (await call(target, 'POST', INFERENCE_PATHS.delete, { model }, signal)).arrayBuffer().catch(() => undefined);
}

/** Starts a pull; resolves once the node pulls, with its progress lines parsed (non-JSON lines skipped). */
export async function pullModel(target: NodeTarget, model: string, signal: AbortSignal): Promise<AsyncGenerator<OllamaEntry>> {
  const res = await call(target, 'POST', INFERENCE_PATHS.pull, { model, stream: true }, signal);
  const body = res.body;
  if (!body) throw new NodeCallError(`${where(target, INFERENCE_PATHS.pull)} answered ${res.status} without a body`, false, { status: res.status });
  return (async function* () {
    for await (const line of ndjsonLines(body as unknown as AsyncIterable<Uint8Array>)) {
      let step: OllamaEntry;
      try {
        step = JSON.parse(line) as OllamaEntry;
      } catch {
        continue;
      }
      yield step;
    }
  })();
}

const where = (target: NodeTarget, path: string) => `${trimSlashes(target.url)}${path}`;

async function call(target: NodeTarget, method: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(where(target, path), {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    // The caller's own abort stays what it is; a time limit passing is the node not answering.
    if (signal.aborted && (err as Error).name !== 'TimeoutError') throw err;
    const code = ((err as { cause?: { code?: unknown } }).cause?.code as string | undefined) ?? (err as Error).name;
    throw new NodeCallError(`call to ${where(target, path)} failed: ${code}`, TRANSIENT_CODES.has(code) || (err as Error).name === 'TimeoutError', { code });
  }
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    const said = saidIn(text) ?? text.slice(0, 300);
    throw new NodeCallError(`${where(target, path)} answered ${res.status}: ${said}`, transientStatus(res.status), { status: res.status, said });
  }
  return res;
}
