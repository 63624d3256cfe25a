import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem } from '../http/problem';
import { redactAll } from '../redaction/redaction';
import type { ChatService } from './service';

/** The answer of POST /v1/embeddings, in OpenAI's shape. */
export interface EmbeddingListBody {
  object: 'list';
  data: Array<{ object: 'embedding'; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

interface EmbeddingRequest {
  model: string;
  input: string[];
  base64: boolean;
  dimensions?: number;
}

const bad = (message: string) => new HttpProblem(400, message, { code: 'invalid_request' });

function parse(body: unknown): EmbeddingRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('The request body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model.trim() === '') throw bad('model must be a string: one of the ids GET /v1/models lists');
  const input = typeof b.input === 'string' ? [b.input] : b.input;
  if (!Array.isArray(input) || input.length === 0) throw bad('input must be a string or a non-empty array of strings');
  if (input.length > 2048) throw bad('input may hold at most 2048 strings');
  if (!input.every((t) => typeof t === 'string')) throw bad('input must be text: token arrays are not supported');
  const format = b.encoding_format;
  if (format !== undefined && format !== null && format !== 'float' && format !== 'base64') throw bad('encoding_format must be float or base64');
  const dims = b.dimensions;
  if (dims !== undefined && dims !== null && (typeof dims !== 'number' || !Number.isInteger(dims) || dims < 1 || dims > 65_536)) throw bad('dimensions must be a positive integer');
  return { model: b.model, input: input as string[], base64: format === 'base64', ...(typeof dims === 'number' ? { dimensions: dims } : {}) };
}

/** Little-endian float32, as OpenAI's base64 encoding_format (and its SDK's decoder) has it. */
function base64Float32(v: number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString('base64');
}

/**
 * POST /v1/embeddings through the node's Ollama (/api/embed): the same `model.use` rule and
 * routing as a chat (404 for a model the caller may not use), the input redacted like a message
 * before it leaves, and a model without the embedding capability refused (400).
 */
export async function embeddings(chat: ChatService, principal: Principal, body: unknown, ctx: RequestContext, signal: AbortSignal): Promise<EmbeddingListBody> {
  const req = parse(body);
  const [candidates, redacted] = await Promise.all([chat.candidates(principal, req.model, ctx), redactAll(req.input)]);
  const able = await chat.able(candidates, req.model, ['embedding'], signal);
  const out = await chat.embed(able, { model: req.model, input: redacted.texts, ...(req.dimensions !== undefined ? { dimensions: req.dimensions } : {}) }, signal);
  return {
    object: 'list',
    data: out.embeddings.map((e, index) => ({ object: 'embedding', index, embedding: req.base64 ? base64Float32(e) : e })),
    model: req.model,
    usage: { prompt_tokens: out.promptTokens, total_tokens: out.promptTokens },
  };
}
