import type { HttpProblem } from '../http/problem';

/*
 * The parts of an OpenAI chat request beyond plain text, checked and mapped to what Ollama's
 * /api/chat takes: tools (and the caller's tool calls and results sent back), response_format,
 * image content parts. Each bad shape is a 400 that names the field.
 */

type Bad = (message: string) => HttpProblem;

/** A capability a model must list in Ollama's /api/show for a request to reach it. */
export type Capability = 'tools' | 'vision' | 'embedding';

/** A tool call as the client sent it back on an assistant message (arguments parsed). */
export interface SentToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

/** An Ollama tool definition. */
export interface OllamaTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface ToolOptions {
  /** What the node gets; absent when none were sent or tool_choice is `none`. */
  tools?: OllamaTool[];
  /** `parallel_tool_calls: false`: only the answer's first call is passed on. */
  single: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * `tools`, `tool_choice`, `parallel_tool_calls`. Ollama has no tool_choice, so it is mapped:
 * `auto` (or absent) sends the tools; `none` sends none (the model cannot call one); `required`
 * sends them all and a named function sends only that one, and in both cases an answer without a
 * call is the model's answer (Ollama cannot force a call). Ollama has no switch for parallel
 * calls either: with `parallel_tool_calls: false` only the first call of an answer is passed on.
 */
export function parseTools(b: Record<string, unknown>, bad: Bad): ToolOptions {
  const single = b.parallel_tool_calls === false;
  if (b.parallel_tool_calls !== undefined && b.parallel_tool_calls !== null && typeof b.parallel_tool_calls !== 'boolean') throw bad('parallel_tool_calls must be a boolean');
  if (b.tools === undefined || b.tools === null) {
    if (b.tool_choice !== undefined && b.tool_choice !== null && b.tool_choice !== 'none' && b.tool_choice !== 'auto') throw bad('tool_choice needs tools');
    return { single };
  }
  if (!Array.isArray(b.tools)) throw bad('tools must be an array of function tools');
  if (b.tools.length > 128) throw bad('tools may list at most 128 functions');
  const tools = b.tools.map((t: unknown, i): OllamaTool => {
    if (!isObject(t) || t.type !== 'function' || !isObject(t.function)) throw bad(`tools[${i}] must be {type: "function", function: {name, description, parameters}}`);
    const f = t.function;
    if (typeof f.name !== 'string' || !FUNCTION_NAME.test(f.name)) throw bad(`tools[${i}].function.name must be 1-64 letters, digits, _ or -`);
    if (f.description !== undefined && f.description !== null && typeof f.description !== 'string') throw bad(`tools[${i}].function.description must be a string`);
    if (f.parameters !== undefined && f.parameters !== null && !isObject(f.parameters)) throw bad(`tools[${i}].function.parameters must be a JSON schema object`);
    return {
      type: 'function',
      function: { name: f.name, ...(typeof f.description === 'string' ? { description: f.description } : {}), ...(isObject(f.parameters) ? { parameters: f.parameters } : {}) },
    };
  });
  const choice = b.tool_choice;
  if (choice === undefined || choice === null || choice === 'auto' || choice === 'required') return tools.length > 0 ? { tools, single } : { single };
  if (choice === 'none') return { single };
  if (isObject(choice) && choice.type === 'function' && isObject(choice.function) && typeof choice.function.name === 'string') {
    const name = choice.function.name;
    const named = tools.filter((t) => t.function.name === name);
    if (named.length === 0) throw bad(`tool_choice names the function "${name.slice(0, 64)}", which tools does not list`);
    return { tools: named, single };
  }
  throw bad('tool_choice must be "none", "auto", "required" or {type: "function", function: {name}}');
}

/** `response_format` → Ollama's `format`: `"json"`, a JSON schema, or nothing for text. */
export function parseResponseFormat(b: Record<string, unknown>, bad: Bad): unknown {
  const rf = b.response_format;
  if (rf === undefined || rf === null) return undefined;
  if (!isObject(rf)) throw bad('response_format must be an object with a type');
  switch (rf.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return 'json';
    case 'json_schema': {
      const js = rf.json_schema;
      if (!isObject(js) || !isObject(js.schema)) throw bad('response_format.json_schema.schema must be a JSON schema object');
      return js.schema;
    }
    default:
      throw bad('response_format.type must be one of text, json_object, json_schema');
  }
}

/** A message as the pipeline uses it: its text, and what else Ollama takes with it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** Base64 images of data-URL image parts. */
  images?: string[];
  /** An assistant message's tool calls, as the client sent them back. */
  toolCalls?: SentToolCall[];
  /** A tool message's `tool_call_id`. */
  toolCallId?: string;
  /** A tool message's function, found from the assistant call it answers. */
  toolName?: string;
}

const DATA_URL = /^data:image\/[a-z0-9.+-]+;base64,([A-Za-z0-9+/=\s]+)$/i;

/** Text parts joined; image parts (data URLs only) as base64; other parts ignored. */
export function parseContent(content: unknown, i: number, bad: Bad): { text: string; images: string[] } {
  if (typeof content === 'string') return { text: content, images: [] };
  if (content === null || content === undefined) return { text: '', images: [] };
  if (!Array.isArray(content)) throw bad(`messages[${i}].content must be a string or an array of content parts`);
  const texts: string[] = [];
  const images: string[] = [];
  content.forEach((p: unknown, j) => {
    if (!isObject(p)) return;
    if (p.type === 'text' && typeof p.text === 'string' && p.text !== '') texts.push(p.text);
    if (p.type === 'image_url') {
      const url = isObject(p.image_url) ? p.image_url.url : p.image_url;
      if (typeof url !== 'string') throw bad(`messages[${i}].content[${j}].image_url.url must be a string`);
      // The gateway fetches nothing for a client: an image comes in the request or not at all.
      const m = DATA_URL.exec(url);
      if (!m) throw bad(`messages[${i}].content[${j}].image_url.url must be a data:image/…;base64 URL (the gateway does not fetch URLs)`);
      images.push(m[1]!.replace(/\s+/g, ''));
    }
  });
  return { text: texts.join('\n'), images };
}

/** An assistant message's `tool_calls` sent back: ids kept, arguments parsed from their JSON. */
export function parseSentToolCalls(raw: unknown, i: number, bad: Bad): SentToolCall[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) throw bad(`messages[${i}].tool_calls must be an array`);
  return raw.map((c: unknown, j) => {
    const at = `messages[${i}].tool_calls[${j}]`;
    if (!isObject(c) || !isObject(c.function) || typeof c.function.name !== 'string') throw bad(`${at} must be {id, type: "function", function: {name, arguments}}`);
    const a = c.function.arguments;
    let args: unknown = {};
    if (typeof a === 'string' && a.trim() !== '') {
      try {
        args = JSON.parse(a);
      } catch {
        throw bad(`${at}.function.arguments must be a JSON object in a string`);
      }
    } else if (isObject(a)) args = a;
    if (!isObject(args)) throw bad(`${at}.function.arguments must be a JSON object in a string`);
    return { id: typeof c.id === 'string' ? c.id : '', name: c.function.name, arguments: args };
  });
}

/** Every string in a JSON value, in a fixed order (for redaction), and the value rebuilt from replacements. */
export function stringLeaves(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) stringLeaves(x, out);
  else if (isObject(v)) for (const x of Object.values(v)) stringLeaves(x, out);
  return out;
}

export function replaceLeaves(v: unknown, next: () => string): unknown {
  if (typeof v === 'string') return next();
  if (Array.isArray(v)) return v.map((x) => replaceLeaves(x, next));
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replaceLeaves(x, next)]));
  return v;
}
