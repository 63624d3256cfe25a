import { randomBytes } from 'node:crypto';
import type { OllamaMessage, OllamaToolCall } from '../nodes/node-client';
import type { ChatMessage } from './openai-features';

/** A tool call in OpenAI's shape, with the index it has in its answer. */
export interface OpenAiToolCall {
  index: number;
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** The pipeline's messages in Ollama's /api/chat shape (tool calls with object arguments, no ids). */
export function toOllamaMessages(messages: ChatMessage[]): OllamaMessage[] {
  return messages.map((m) => {
    const out: OllamaMessage = { role: m.role, content: m.content };
    if (m.images) out.images = m.images;
    if (m.toolCalls) out.tool_calls = m.toolCalls.map((c) => ({ type: 'function', function: { name: c.name, arguments: c.arguments } }));
    if (m.toolName !== undefined) out.tool_name = m.toolName;
    return out;
  });
}

/**
 * Gives Ollama's whole calls what OpenAI clients need: an id (Ollama has none), an index that
 * counts across the whole answer (a stream can bring calls in more than one chunk), and the
 * arguments as a JSON string.
 */
export class ToolCallMinter {
  private next = 0;

  constructor(
    /** `parallel_tool_calls: false`: calls after the first are dropped. */
    private readonly single: boolean,
  ) {}

  mint(calls: OllamaToolCall[]): OpenAiToolCall[] {
    const out: OpenAiToolCall[] = [];
    for (const c of calls) {
      if (this.single && this.next > 0) break;
      out.push({ index: this.next++, id: `call_${randomBytes(12).toString('base64url')}`, type: 'function', function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments) } });
    }
    return out;
  }

  get count(): number {
    return this.next;
  }
}

/**
 * A JSON string in a few pieces, as OpenAI streams arguments (clients join them by index; one
 * that forgot to would fail here as with OpenAI). Cut on code points, never inside one.
 */
export function fragments(s: string, pieces = 3): string[] {
  const chars = Array.from(s);
  if (chars.length <= 1) return [s];
  const size = Math.ceil(chars.length / pieces);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}
