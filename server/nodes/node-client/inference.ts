import http from 'node:http';
import https from 'node:https';
import { INFERENCE_PATHS } from '../../../node-manager/contract/worker-api';
import { storableText } from '../../db/storable';
import { NodeCallError, TRANSIENT_CODES, aborted, saidIn, transientStatus, trimSlashes } from './call-error';
import { NdjsonLines } from './ndjson';
import type { NodeTarget } from './worker-calls';

/**
 * A node running in this process (the desktop's embedded node): its Worker API URL, as routing
 * knows it, and the Ollama its inference routes forward to.
 */
export interface InProcessNode {
  workerUrl: string;
  ollamaUrl(): string;
}

/** A tool call as Ollama gives and takes it: whole, with object arguments, no id. */
export interface OllamaToolCall {
  type?: 'function';
  function: { name: string; arguments: Record<string, unknown> };
  /** Arguments the model sent as a string that is no JSON (then `arguments` is empty): the agent answers them as an error. */
  unparsedArguments?: string;
}

/** A message of Ollama's /api/chat. */
export interface OllamaMessage {
  role: string;
  content: string;
  /** Base64 images (no data: prefix), for vision models. */
  images?: string[];
  tool_calls?: OllamaToolCall[];
  /** On a `tool` message: the function whose result it is. */
  tool_name?: string;
}

/** An Ollama /api/chat request (what the node passes to its Ollama unchanged). */
export interface OllamaChatRequest {
  model: string;
  messages: OllamaMessage[];
  stream: boolean;
  options?: Record<string, unknown>;
  tools?: unknown[];
  /** `"json"` or a JSON schema. */
  format?: unknown;
}

export interface ChatCallOptions {
  signal: AbortSignal;
  onToken?: (content: string) => void;
  /** The tool calls of one chunk, as soon as it arrives (Ollama sends calls whole). */
  onToolCalls?: (calls: OllamaToolCall[]) => void;
}

export interface ChatOutcome {
  content: string;
  /** Every tool call of the answer, in order. */
  toolCalls: OllamaToolCall[];
  promptTokens: number;
  completionTokens: number;
  doneReason: string;
}

/**
 * Calls to a node's inference route (INFERENCE_PATHS.chat): always streams from the node and
 * hands each content piece to `onToken` as soon as its NDJSON line is complete, so the first token
 * reaches the chat client without waiting for the rest. Keep-alive sockets (one agent per client)
 * spare a TCP handshake per completion. Aborting the signal destroys the request, which the node
 * turns into an abort of the generation.
 *
 * A node in this process is called without its Worker API: its chat route only pipes Ollama's
 * answer, status and bytes, so the same request goes straight to that Ollama, and the loopback
 * hop (an HTTP server and client in one process, about a third of the time to first token) is
 * saved. A loopback URL names one listener on this machine, so a target with the embedded node's
 * Worker API URL is that node, whatever row routing read it from.
 */
export class InferenceCalls {
  private readonly inProcess = new Map<string, InProcessNode>();
  // `timeout` lets the agent honour the node's Keep-Alive hint (see node-manager/worker-api/inference-routes.ts).
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 10_000, timeout: 60_000 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 10_000, timeout: 60_000 });

  addInProcessNode(node: InProcessNode): () => void {
    const key = trimSlashes(node.workerUrl);
    this.inProcess.set(key, node);
    return () => {
      if (this.inProcess.get(key) === node) this.inProcess.delete(key);
    };
  }

  chat(target: NodeTarget, body: OllamaChatRequest, opts: ChatCallOptions): Promise<ChatOutcome> {
    const local = this.inProcess.get(trimSlashes(target.url));
    let url: URL;
    try {
      url = new URL(local ? `${trimSlashes(local.ollamaUrl())}/api/chat` : trimSlashes(target.url) + INFERENCE_PATHS.chat);
    } catch {
      return Promise.reject(new NodeCallError(local ? `the node's Ollama URL is not valid` : `the node's Worker API URL is not valid`, false));
    }
    const where = `${url.origin}${url.pathname}`;
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', accept: 'application/x-ndjson' };
    if (!local) headers.authorization = `Bearer ${target.token}`;
    const payload = Buffer.from(JSON.stringify({ ...body, stream: true }));

    return new Promise<ChatOutcome>((resolve, reject) => {
      let settled = false;
      let started = false;
      let content = '';
      const toolCalls: OllamaToolCall[] = [];
      const finish = (err: NodeCallError | null, value?: ChatOutcome) => {
        if (settled) return;
        settled = true;
        opts.signal.removeEventListener('abort', onAbort);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(value!);
      };
      const onAbort = () => finish(aborted(where, { started }));

      const req = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
        headers: { ...headers, 'content-length': payload.length },
      });
      req.setNoDelay(true);
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
          res.on('end', () => {
            const said = saidIn(Buffer.concat(chunks).toString('utf8')) ?? undefined;
            finish(new NodeCallError(`${where} answered ${status}${said === undefined ? '' : `: ${said}`}`, transientStatus(status), { status, said }));
          });
          res.on('error', () => finish(new NodeCallError(`${where} answered ${status}`, status >= 500, { status })));
          return;
        }
        res.setEncoding('utf8');
        const lines = new NdjsonLines();
        /** true once the answer is complete (or failed). */
        const line = (text: string): boolean => {
          let chunk: { message?: { content?: unknown; tool_calls?: unknown }; done?: unknown; error?: unknown; prompt_eval_count?: unknown; eval_count?: unknown; done_reason?: unknown };
          try {
            chunk = JSON.parse(text) as typeof chunk;
          } catch {
            finish(new NodeCallError(`${where} sent a line that is not JSON`, !started, { started }));
            return true;
          }
          if (typeof chunk.error === 'string') {
            finish(new NodeCallError(`the model failed: ${chunk.error.slice(0, 300)}`, false, { started, status: 502 }));
            return true;
          }
          // Stored with the answer: what the database cannot store (a NUL) becomes U+FFFD.
          const piece = typeof chunk.message?.content === 'string' ? storableText(chunk.message.content) : '';
          if (piece !== '') {
            started = true;
            content += piece;
            opts.onToken?.(piece);
          }
          const calls = toolCallsIn(chunk.message?.tool_calls);
          if (calls.length > 0) {
            started = true;
            toolCalls.push(...calls);
            opts.onToolCalls?.(calls);
          }
          if (chunk.done === true) {
            finish(null, {
              content,
              toolCalls,
              promptTokens: typeof chunk.prompt_eval_count === 'number' ? chunk.prompt_eval_count : 0,
              completionTokens: typeof chunk.eval_count === 'number' ? chunk.eval_count : 0,
              doneReason: typeof chunk.done_reason === 'string' ? chunk.done_reason : 'stop',
            });
            return true;
          }
          return false;
        };
        res.on('data', (data: string) => {
          if (settled) return;
          for (const text of lines.push(data)) if (line(text)) return;
        });
        res.on('end', () => {
          if (settled) return;
          const last = lines.end();
          if (last !== null && line(last)) return;
          finish(new NodeCallError(`${where} closed the answer before it was done`, !started, { started }));
        });
        res.on('error', () => finish(new NodeCallError(`${where} broke off the answer`, !started, { started })));
        res.on('aborted', () => finish(new NodeCallError(`${where} broke off the answer`, !started, { started })));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'UNKNOWN';
        finish(new NodeCallError(`call to ${where} failed: ${code}`, !started && (TRANSIENT_CODES.has(code) || code === 'UNKNOWN'), { started, code }));
      });
      if (opts.signal.aborted) {
        onAbort();
        return;
      }
      opts.signal.addEventListener('abort', onAbort, { once: true });
      req.end(payload);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** The well-formed tool calls of a chunk (a name, object arguments); anything else is dropped. */
function toolCallsIn(raw: unknown): OllamaToolCall[] {
  if (!Array.isArray(raw)) return [];
  const out: OllamaToolCall[] = [];
  for (const c of raw as Array<{ function?: { name?: unknown; arguments?: unknown } }>) {
    const f = c?.function;
    if (typeof f?.name !== 'string' || f.name === '') continue;
    let args = f.arguments;
    let unparsed: string | undefined;
    // Some models' templates give the arguments as a JSON string.
    if (typeof args === 'string') {
      try {
        args = JSON.parse(args);
      } catch {
        unparsed = storableText((args as string).slice(0, 10_000));
        args = {};
      }
    }
    out.push({ type: 'function', function: { name: storableText(f.name), arguments: typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>) : {} }, ...(unparsed !== undefined ? { unparsedArguments: unparsed } : {}) });
  }
  return out;
}
