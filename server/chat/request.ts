import { HttpProblem } from '../http/problem';
import { parseContent, parseResponseFormat, parseSentToolCalls, parseTools, type Capability, type ChatMessage, type OllamaTool } from './openai-features';

export const ROLES = ['system', 'user', 'assistant', 'tool'] as const;
export type Role = (typeof ROLES)[number];

/** The project manager agent's model id, served by a PMA a node runs, not by Ollama. */
export const PM_MODEL = 'cynodeai.pm';

/** A completion request as the pipeline uses it: checked, with OpenAI's options in Ollama's names. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream: boolean;
  includeUsage: boolean;
  options: Record<string, unknown>;
  /** Function tools for the node (tool_choice applied). */
  tools?: OllamaTool[];
  /** `parallel_tool_calls: false`. */
  singleToolCall?: boolean;
  /** Ollama's `format`: `"json"` or a JSON schema. */
  format?: unknown;
  /** What the model must be able to do for this request (checked against /api/show). */
  needs?: Capability[];
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
  const names = new Map<string, string>();
  const messages = b.messages.map((m: unknown, i): ChatMessage => {
    if (typeof m !== 'object' || m === null) throw bad(`messages[${i}] must be an object`);
    const { role, content, tool_calls: calls, tool_call_id: callId } = m as { role?: unknown; content?: unknown; tool_calls?: unknown; tool_call_id?: unknown };
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) throw bad(`messages[${i}].role must be one of ${ROLES.join(', ')}`);
    const { text, images } = parseContent(content, i, bad);
    const msg: ChatMessage = { role: role as Role, content: text };
    if (images.length > 0) msg.images = images;
    if (role === 'assistant') {
      const toolCalls = parseSentToolCalls(calls, i, bad);
      if (toolCalls && toolCalls.length > 0) {
        msg.toolCalls = toolCalls;
        for (const c of toolCalls) if (c.id !== '') names.set(c.id, c.name);
      }
    }
    if (role === 'tool') {
      if (typeof callId !== 'string') throw bad(`messages[${i}].tool_call_id must be the id of the call this message answers`);
      msg.toolCallId = callId;
      const name = names.get(callId);
      if (name !== undefined) msg.toolName = name;
    }
    return msg;
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
  const { tools, single } = parseTools(b, bad);
  const format = parseResponseFormat(b, bad);
  const needs: Capability[] = [];
  if (tools) needs.push('tools');
  if (messages.some((m) => m.images)) needs.push('vision');
  return {
    model,
    messages,
    stream: b.stream === true,
    includeUsage: typeof so === 'object' && so !== null && so.include_usage === true,
    options,
    ...(tools ? { tools } : {}),
    ...(single ? { singleToolCall: true } : {}),
    ...(format !== undefined ? { format } : {}),
    ...(needs.length > 0 ? { needs } : {}),
  };
}
