import { HttpProblem } from '../http/problem';

export const ROLES = ['system', 'user', 'assistant', 'tool'] as const;
export type Role = (typeof ROLES)[number];

/** The project manager agent's model id, served by a PMA a node runs, not by Ollama. */
export const PM_MODEL = 'cynodeai.pm';

/** A completion request as the pipeline uses it: checked, with OpenAI's options in Ollama's names. */
export interface ChatRequest {
  model: string;
  messages: Array<{ role: Role; content: string }>;
  stream: boolean;
  includeUsage: boolean;
  options: Record<string, unknown>;
}

/**
 * The body of POST /v1/chat/completions, checked by hand: OpenAI clients send many fields we do
 * not know (they are ignored, top level and inside messages); only what we use must be right.
 */
export function parseChatRequest(body: unknown): ChatRequest {
  // OpenAI-shaped, as the service's chatError: status plus error.code.
  const bad = (message: string) => new HttpProblem(400, message, { code: 'invalid_request' });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('The request body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (b.model !== undefined && b.model !== null && typeof b.model !== 'string') throw bad('model must be a string: one of the ids GET /v1/models lists');
  // No model means the project manager agent.
  const model = typeof b.model === 'string' && b.model.trim() !== '' ? b.model : PM_MODEL;
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw bad('messages must be a non-empty array');
  const messages = b.messages.map((m: unknown, i) => {
    if (typeof m !== 'object' || m === null) throw bad(`messages[${i}] must be an object`);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) throw bad(`messages[${i}].role must be one of ${ROLES.join(', ')}`);
    return { role: role as Role, content: contentText(content, i, bad) };
  });
  if (!messages.some((m) => m.role === 'user')) throw bad('messages must contain at least one user message');
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw bad('stream must be a boolean');
  const so = b.stream_options as { include_usage?: unknown } | undefined | null;
  const options: Record<string, unknown> = {};
  const num = (name: string, to: string) => {
    const v = b[name];
    if (v === undefined || v === null) return;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${name} must be a number`);
    options[to] = v;
  };
  num('temperature', 'temperature');
  num('top_p', 'top_p');
  num('seed', 'seed');
  num('max_tokens', 'num_predict');
  num('max_completion_tokens', 'num_predict');
  num('frequency_penalty', 'frequency_penalty');
  num('presence_penalty', 'presence_penalty');
  if (typeof b.stop === 'string') options.stop = [b.stop];
  else if (Array.isArray(b.stop) && b.stop.every((s) => typeof s === 'string')) options.stop = b.stop;
  return { model, messages, stream: b.stream === true, includeUsage: typeof so === 'object' && so !== null && so.include_usage === true, options };
}

/** A string, or OpenAI content parts of which the text parts are joined (images are not supported). */
function contentText(content: unknown, i: number, bad: (m: string) => HttpProblem): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content
      .map((p: unknown) => (typeof p === 'object' && p !== null && (p as { type?: unknown }).type === 'text' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .filter((t) => t !== '')
      .join('\n');
  }
  throw bad(`messages[${i}].content must be a string or an array of content parts`);
}
