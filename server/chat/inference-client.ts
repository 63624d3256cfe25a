import http from 'node:http';
import https from 'node:https';
import { INFERENCE_PATHS } from '../../node-manager/contract/worker-api';

/** Where a node's Worker API is and the bearer token it expects from us. */
export interface InferenceTarget {
  url: string;
  token: string;
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
 */
export class InferenceClient {
  // `timeout` lets the agent honour the node's Keep-Alive hint (see node-manager/worker-api/inference-routes.ts).
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 10_000, timeout: 60_000 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 10_000, timeout: 60_000 });

  chat(target: InferenceTarget, body: OllamaChatRequest, opts: { signal: AbortSignal; onToken?: (content: string) => void }): Promise<ChatOutcome> {
    let url: URL;
    try {
      url = new URL(target.url.replace(/\/+$/, '') + INFERENCE_PATHS.chat);
    } catch {
      return Promise.reject(new InferenceError(`the node's Worker API URL is not valid`, false, false));
    }
    const where = `${url.origin}${INFERENCE_PATHS.chat}`;
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
        headers: { 'content-type': 'application/json', 'content-length': payload.length, accept: 'application/x-ndjson', authorization: `Bearer ${target.token}` },
      });
      req.setNoDelay(true);
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
          res.on('end', () => finish(new InferenceError(`${where} answered ${status}${detailOf(Buffer.concat(chunks).toString('utf8'))}`, status >= 500 || status === 429, false, status)));
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
          const piece = typeof chunk.message?.content === 'string' ? chunk.message.content : '';
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
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const text = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            if (line(text)) return;
          }
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
