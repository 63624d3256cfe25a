import http from 'node:http';
import https from 'node:https';
import { INFERENCE_PATHS } from '../../node-manager/contract/worker-api';
import { storableText } from '../db/storable';

/** Where a node's Worker API is and the bearer token it expects from us. */
export interface InferenceTarget {
  url: string;
  token: string;
}

/**
 * A node running in this process (the desktop's embedded node): its Worker API URL, as routing
 * knows it, and the Ollama its inference routes forward to.
 */
export interface InProcessNode {
  workerUrl: string;
  ollamaUrl(): string;
}

/** An Ollama /api/chat request (what the node passes to its Ollama unchanged). */
export interface OllamaChatRequest {
  model: string;
  messages: Array<{ role: string; content: string }>;
  stream: boolean;
  options?: Record<string, unknown>;
}

export interface ChatOutcome {
  content: string;
  promptTokens: number;
  completionTokens: number;
  doneReason: string;
}

/**
 * A node call that gave no usable answer. `transient` ones (connection refused or reset, 5xx, the
 * node closing before any token) are worth another attempt, here or on another node; `started`
 * says whether content had already been passed on (then nothing may be retried).
 */
export class InferenceError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly started: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/**
 * The orchestrator's client for a node's inference route (INFERENCE_PATHS.chat): always streams
 * from the node and hands each content piece to `onToken` as soon as its NDJSON line is complete,
 * so the first token reaches the chat client without waiting for the rest. Keep-alive sockets
 * (one agent per client) spare a TCP handshake per completion. Aborting the signal destroys the
 * request, which the node turns into an abort of the generation.
 *
 * A node in this process is called without its Worker API: its chat route only pipes Ollama's
 * answer, status and bytes, so the same request goes straight to that Ollama, and the loopback
 * hop (an HTTP server and client in one process, about a third of the time to first token) is
 * saved. A loopback URL names one listener on this machine, so a target with the embedded node's
 * Worker API URL is that node, whatever row routing read it from.
 */
export class InferenceClient {
  private readonly inProcess = new Map<string, InProcessNode>();
  // `timeout` lets the agent honour the node's Keep-Alive hint (see node-manager/worker-api/inference-routes.ts).
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 10_000, timeout: 60_000 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 10_000, timeout: 60_000 });

  /** Calls `node` in process from now on; the returned function stops that (the node is closing). */
  addInProcessNode(node: InProcessNode): () => void {
    const key = trimSlashes(node.workerUrl);
    this.inProcess.set(key, node);
    return () => {
      if (this.inProcess.get(key) === node) this.inProcess.delete(key);
    };
  }

  chat(target: InferenceTarget, body: OllamaChatRequest, opts: { signal: AbortSignal; onToken?: (content: string) => void }): Promise<ChatOutcome> {
    const local = this.inProcess.get(trimSlashes(target.url));
    let url: URL;
    try {
      url = new URL(local ? `${trimSlashes(local.ollamaUrl())}/api/chat` : trimSlashes(target.url) + INFERENCE_PATHS.chat);
    } catch {
      return Promise.reject(new InferenceError(local ? `the node's Ollama URL is not valid` : `the node's Worker API URL is not valid`, false, false));
    }
    const where = `${url.origin}${url.pathname}`;
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', accept: 'application/x-ndjson' };
    if (!local) headers.authorization = `Bearer ${target.token}`;
    const payload = Buffer.from(JSON.stringify({ ...body, stream: true }));

    return new Promise<ChatOutcome>((resolve, reject) => {
      let settled = false;
      let started = false;
      let content = '';
      const finish = (err: InferenceError | null, value?: ChatOutcome) => {
        if (settled) return;
        settled = true;
        opts.signal.removeEventListener('abort', onAbort);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(value!);
      };
      const onAbort = () => finish(Object.assign(new InferenceError(`call to ${where} aborted`, false, started), { name: 'AbortError' }));

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
          // 401: the node has not applied the token of its latest registration yet.
          res.on('end', () => finish(new InferenceError(`${where} answered ${status}${detailOf(Buffer.concat(chunks).toString('utf8'))}`, status >= 500 || status === 429 || status === 401, false, status)));
          res.on('error', () => finish(new InferenceError(`${where} answered ${status}`, status >= 500, false, status)));
          return;
        }
        res.setEncoding('utf8');
        let buffered = '';
        const line = (text: string): boolean => {
          if (text.trim() === '') return false;
          let chunk: { message?: { content?: unknown }; done?: unknown; error?: unknown; prompt_eval_count?: unknown; eval_count?: unknown; done_reason?: unknown };
          try {
            chunk = JSON.parse(text) as typeof chunk;
          } catch {
            finish(new InferenceError(`${where} sent a line that is not JSON`, !started, started));
            return true;
          }
          if (typeof chunk.error === 'string') {
            finish(new InferenceError(`the model failed: ${chunk.error.slice(0, 300)}`, false, started, 502));
            return true;
          }
          // Stored with the answer: what the database cannot store (a NUL) becomes U+FFFD.
          const piece = typeof chunk.message?.content === 'string' ? storableText(chunk.message.content) : '';
          if (piece !== '') {
            started = true;
            content += piece;
            opts.onToken?.(piece);
          }
          if (chunk.done === true) {
            finish(null, {
              content,
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
          buffered += data;
          let from = 0;
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n', from)) {
            const text = buffered.slice(from, nl);
            from = nl + 1;
            if (line(text)) return;
          }
          buffered = buffered.slice(from);
        });
        res.on('end', () => {
          if (settled) return;
          if (buffered !== '' && line(buffered)) return;
          finish(new InferenceError(`${where} closed the answer before it was done`, !started, started));
        });
        res.on('error', () => finish(new InferenceError(`${where} broke off the answer`, !started, started)));
        res.on('aborted', () => finish(new InferenceError(`${where} broke off the answer`, !started, started)));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'UNKNOWN';
        finish(new InferenceError(`call to ${where} failed: ${code}`, !started && (TRANSIENT_CODES.has(code) || code === 'UNKNOWN'), started));
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

const trimSlashes = (url: string) => url.replace(/\/+$/, '');

/** The detail of a problem document or Ollama's `{error}`, clipped, for error messages. */
function detailOf(text: string): string {
  try {
    const doc = JSON.parse(text) as { detail?: unknown; error?: unknown };
    if (typeof doc.detail === 'string') return `: ${doc.detail.slice(0, 300)}`;
    if (typeof doc.error === 'string') return `: ${doc.error.slice(0, 300)}`;
  } catch {
    // not JSON
  }
  return '';
}
