import type { ToolDef } from '../mcp/catalog';
import type { ToolOutcome } from '../mcp/service';
import type { OllamaTool } from '../chat/openai-features';

/** A tool result longer than this is cut before it goes back to the model (its context is small). */
const MAX_RESULT_CHARS = 12_000;

/** MCP tools as Ollama function tools: names as they are (Ollama takes dots), JSON Schema inputs. */
export function functionTools(tools: readonly ToolDef[]): OllamaTool[] {
  // Through JSON: TypeBox marks schemas with symbol keys that are no part of JSON Schema.
  return tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: JSON.parse(JSON.stringify(t.input)) as Record<string, unknown> } }));
}

/** A model's arguments as an object: Ollama sends an object, some models a JSON string. */
export function parseArguments(raw: unknown): { ok: true; args: Record<string, unknown> } | { ok: false; message: string } {
  let value = raw ?? {};
  if (typeof value === 'string') {
    try {
      value = value.trim() === '' ? {} : JSON.parse(value);
    } catch {
      return { ok: false, message: 'the arguments are not valid JSON; send a JSON object that matches the tool input schema' };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, message: 'the arguments must be a JSON object' };
  return { ok: true, args: value as Record<string, unknown> };
}

/** What the model reads back from a call: the result or the error, as JSON, bounded. */
export function resultText(outcome: ToolOutcome): string {
  const text = JSON.stringify(outcome.ok ? outcome.result : { error: outcome.error });
  return text.length > MAX_RESULT_CHARS ? `${text.slice(0, MAX_RESULT_CHARS)}… (cut: ${text.length} characters in all)` : text;
}

/** Same tool with the same arguments: key order does not make a call new. */
export function callKey(name: string, args: Record<string, unknown>): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted) : typeof v === 'object' && v !== null ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])])) : v;
  return `${name}\u0000${JSON.stringify(sorted(args))}`;
}
