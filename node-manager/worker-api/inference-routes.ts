import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem } from '../../server/http/problem';
import { errors } from '../../server/http/schemas';
import type { HttpServer } from '../../server/http/server';
import { INFERENCE_PATHS } from '../contract/worker-api';

/*
 * The node's Ollama behind the Worker API (contract: INFERENCE_PATHS). These are Ollama's bodies,
 * not ours: fields we do not know are passed on (only what routing needs is required), and the
 * answer is Ollama's, status and bytes, piped as it arrives. No chunk is parsed or re-encoded:
 * the chat path adds as little as possible to the time to first token.
 */

const ModelName = Type.String({ minLength: 1, maxLength: 500 });
const Open = { additionalProperties: true } as const;

const ChatBody = Type.Object({ model: ModelName, messages: Type.Array(Type.Object({}, Open), { maxItems: 10_000 }) }, { ...Open, description: "An Ollama /api/chat request; Ollama's fields pass through" });
const EmbedBody = Type.Object({ model: ModelName, input: Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 10_000 })]) }, { ...Open, description: "An Ollama /api/embed request; Ollama's fields pass through" });
const ModelBody = Type.Object({ model: ModelName }, { ...Open, description: 'An Ollama model request; other fields pass through' });
const Passthrough = Type.Unknown({ description: "Ollama's answer as it gave it (NDJSON when streaming)" });

export interface InferenceRoutesOptions {
  /** The node's Ollama, e.g. http://127.0.0.1:11434 (OLLAMA_HOST); read per request, it may change. */
  ollamaUrl(): string;
}

export interface InferenceProxy {
  /** Closes idle keep-alive connections to Ollama. */
  close(): void;
}

const NOT_RUNNING = 'inference is not running on this node';

/** Registers the inference routes on the Worker API (bearer-checked like every /v1 route there). */
export function inferenceRoutes(app: HttpServer, o: InferenceRoutesOptions): InferenceProxy {
  // One connection per stream is set up once and reused: no TCP handshake before each first token.
  // `timeout` lets the agent honour a server's Keep-Alive hint: an idle socket is dropped a second
  // before the server would close it, instead of being reused as it closes (ECONNRESET, a retry).
  // Sockets in use are not affected: nothing here listens for their 'timeout'.
  const agentOptions = { keepAlive: true, maxSockets: 256, timeout: 60_000 };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };

  /**
   * Sends the call to Ollama and answers with its response as a stream. The caller going away
   * (closed request, aborted stream) destroys the upstream request: Ollama stops generating.
   */
  const forward = (request: FastifyRequest, reply: FastifyReply, method: string, path: string, body?: unknown): Promise<FastifyReply> =>
    new Promise((resolve, reject) => {
      const base = o.ollamaUrl();
      const url = new URL(base.replace(/\/+$/, '') + path);
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const secure = url.protocol === 'https:';
      const upstream = (secure ? https : http).request(url, {
        method,
        agent: secure ? agents.https : agents.http,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      });
      const res = reply.raw;
      const abandon = () => {
        // 'close' also fires after a complete answer; only an unfinished one is an abort.
        if (!res.writableFinished) upstream.destroy();
      };
      res.once('close', abandon);
      upstream.once('error', (err: NodeJS.ErrnoException) => {
        if (res.destroyed || reply.sent) return;
        request.log.warn({ err: { code: err.code, message: err.message }, ollama: base }, 'Ollama unreachable');
        reject(new HttpProblem(503, NOT_RUNNING, { ollama_error: err.code ?? err.message }, { 'retry-after': '5' }));
      });
      upstream.once('response', (answer: IncomingMessage) => {
        reply.code(answer.statusCode ?? 502);
        reply.header('content-type', answer.headers['content-type'] ?? 'application/x-ndjson');
        // Tells buffering proxies in between to pass chunks on at once.
        reply.header('x-accel-buffering', 'no');
        resolve(reply.send(answer));
      });
      upstream.end(payload);
    });

  const schema = (summary: string, body?: unknown) => ({
    tags: ['inference'],
    summary,
    ...(body ? { body } : {}),
    response: { 200: Passthrough, ...errors(400, 401, 503) },
  });

  app.post(INFERENCE_PATHS.chat, { schema: schema("Chat with the node's Ollama (/api/chat), streamed as Ollama streams", ChatBody) }, (request, reply) =>
    forward(request, reply, 'POST', '/api/chat', request.body),
  );
  app.post(INFERENCE_PATHS.embed, { schema: schema("Embeddings from the node's Ollama (/api/embed)", EmbedBody) }, (request, reply) =>
    forward(request, reply, 'POST', '/api/embed', request.body),
  );
  app.post(INFERENCE_PATHS.show, { schema: schema("What the node's Ollama knows of a model (/api/show), its capabilities among it", ModelBody) }, (request, reply) =>
    forward(request, reply, 'POST', '/api/show', request.body),
  );
  app.post(INFERENCE_PATHS.pull, { schema: schema('Pull a model into the node\'s Ollama; NDJSON progress as Ollama gives it', ModelBody) }, (request, reply) =>
    forward(request, reply, 'POST', '/api/pull', request.body),
  );
  app.post(INFERENCE_PATHS.delete, { schema: schema('Delete a model from the node\'s Ollama (200, or 404 when absent)', ModelBody) }, (request, reply) =>
    forward(request, reply, 'DELETE', '/api/delete', request.body),
  );
  app.get(INFERENCE_PATHS.models, { schema: schema("The models the node's Ollama has (/api/tags)") }, (request, reply) => forward(request, reply, 'GET', '/api/tags'));

  return {
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
