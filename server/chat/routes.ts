import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { HttpProblem } from '../http/problem';
import { IdParams, Nullable, Strict, Timestamp, Uuid, errors } from '../http/schemas';
import type { MessageRow, ThreadRow } from './store';
import type { ChatService } from './service';
import type { ChatCompletions } from './completion';
import { SseWriter } from './sse';
import { ChatCompletion, ChatCompletionRequest, EmbeddingList, EmbeddingRequest, ModelList, objectBodyOnly } from './openai-schemas';
import { embeddings } from './embeddings';

export interface ChatRouteOptions {
  /** `: keepalive` comments this often while a stream waits for its first token. */
  keepaliveSeconds: number;
}

const ThreadResponse = Type.Object({
  id: Uuid,
  thread_id: Uuid,
  project_id: Nullable(Uuid),
  title: Nullable(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const MessageResponse = Type.Object({
  id: Uuid,
  thread_id: Uuid,
  role: Type.String({ description: 'user, assistant, system or tool' }),
  content: Type.String({ description: 'The message as stored: secrets replaced by SECRET_REDACTED' }),
  metadata: Nullable(Type.Object({}, { additionalProperties: true })),
  created_at: Timestamp,
});

const threadView = (t: ThreadRow) => ({ id: t.id, thread_id: t.id, project_id: t.project_id, title: t.title, created_at: t.created_at.toISOString(), updated_at: t.updated_at.toISOString() });
const messageView = (m: MessageRow) => ({ id: m.id, thread_id: m.thread_id, role: m.role, content: m.content, metadata: m.metadata, created_at: m.created_at.toISOString() });

const OffsetPage = {
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
};

const ModelId = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f]+$', description: 'A model id from GET /v1/models' });

/** When the models were "created", for OpenAI's list shape: we do not know, so the process start. */
const CREATED = Math.floor(Date.now() / 1000);

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * The OpenAI-compatible chat surface (errors in OpenAI's shape; unknown fields ignored) and the
 * native thread endpoints (problem details; strict).
 */
export function chatRoutes(app: HttpServer, chat: ChatService, completions: ChatCompletions, opts: ChatRouteOptions): void {
  app.get(
    '/v1/models',
    {
      config: { errorFormat: 'openai' },
      schema: {
        tags: ['chat'],
        summary: 'Models you may chat with (OpenAI list shape)',
        description: 'The union of the models of the nodes serving inference now, filtered by what you may use. Errors in OpenAI\'s shape.',
        response: { 200: ModelList },
      },
    },
    async (request) => {
      const models = await completions.models(request.principal!, requestContext(request));
      return { object: 'list' as const, data: models.map((id) => ({ id, object: 'model' as const, created: CREATED, owned_by: 'cynode' })) };
    },
  );

  app.post(
    '/v1/chat/completions',
    {
      config: { errorFormat: 'openai' },
      schema: {
        tags: ['chat'],
        summary: 'OpenAI-compatible chat completion, streaming with stream:true',
        description:
          'Body as OpenAI\'s Chat Completions (`model`, `messages`, `stream`, `stream_options`, `temperature`, `top_p`, `max_tokens`, `stop`, `seed`; other fields are ignored). ' +
          'Header `OpenAI-Project` (project id or slug) chooses the project, else your default project; `X-Cynode-Thread-Id` names one of your threads in it. ' +
          'Secrets in messages are replaced by SECRET_REDACTED before anything is stored or sent to a model. Errors in OpenAI\'s shape with codes ' +
          'invalid_request (400), model_not_found (404), cynodeai_request_canceled (408), cynodeai_inference_failed (502), cynodeai_inference_unavailable (503), cynodeai_completion_timeout (504).',
        body: ChatCompletionRequest,
        response: { 200: { content: { 'application/json': { schema: ChatCompletion } } } },
      },
      validatorCompiler: objectBodyOnly,
    },
    async (request, reply) => {
      const gone = new AbortController();
      // 'close' before the answer finished: the client went away (or the socket broke).
      const onClose = () => {
        if (!reply.raw.writableFinished) gone.abort();
      };
      reply.raw.once('close', onClose);
      try {
        const answer = await completions.complete(request.principal!, {
          body: request.body,
          projectRef: header(request, 'openai-project'),
          threadId: header(request, 'x-cynode-thread-id'),
          ctx: requestContext(request),
          clientGone: gone.signal,
          openStream: (meta) => new SseWriter(reply, meta, opts.keepaliveSeconds),
          log: request.log,
        });
        return answer.streamed ? reply : answer.body;
      } catch (err) {
        if (gone.signal.aborted && reply.raw.destroyed) {
          // Nobody to answer; Fastify must not try.
          reply.hijack();
          return reply;
        }
        throw err;
      } finally {
        reply.raw.off('close', onClose);
      }
    },
  );

  app.post(
    '/v1/embeddings',
    {
      config: { errorFormat: 'openai' },
      schema: {
        tags: ['chat'],
        summary: 'OpenAI-compatible embeddings, through the Ollama of a node serving the model',
        description:
          'Body as OpenAI\'s (`model`, `input` as a string or strings, `encoding_format` float or base64, `dimensions`). The input is redacted like a chat message before it reaches a node. ' +
          'Errors in OpenAI\'s shape: invalid_request (400), model_capability (400: the model lacks the embedding capability), model_not_found (404), cynodeai_inference_failed (502), cynodeai_inference_unavailable (503).',
        body: EmbeddingRequest,
        response: { 200: EmbeddingList },
      },
      validatorCompiler: objectBodyOnly,
    },
    async (request, reply) => {
      const gone = new AbortController();
      // 'close' before the answer was sent: the client went away; the node stops too.
      const onClose = () => {
        if (!reply.raw.writableFinished) gone.abort();
      };
      reply.raw.once('close', onClose);
      try {
        return await embeddings(chat, request.principal!, request.body, requestContext(request), gone.signal);
      } catch (err) {
        if (err instanceof HttpProblem && err.cause !== undefined) request.log.warn({ err: String((err.cause as Error)?.message ?? err.cause) }, 'embedding failed on the node');
        throw err;
      } finally {
        reply.raw.off('close', onClose);
      }
    },
  );

  app.post(
    '/v1/chat/warm',
    {
      config: { errorFormat: 'openai' },
      schema: {
        tags: ['chat'],
        summary: 'Load a model ahead of a chat (best effort, never waits for the load)',
        description:
          'Asks the node that would answer `model` (body or query; required) to load it. 202 `warming`, or 200 `already_warm` when that node used or loaded it in the last five minutes. ' +
          'Same errors as a completion, in OpenAI\'s shape: 404 model_not_found, 503 cynodeai_inference_unavailable.',
        querystring: Strict({ model: Type.Optional(ModelId) }),
        body: Type.Optional(Strict({ model: Type.Optional(ModelId) })),
        response: { 200: Type.Object({ status: Type.Literal('already_warm'), model: Type.String() }), 202: Type.Object({ status: Type.Literal('warming'), model: Type.String() }) },
      },
    },
    async (request, reply) => {
      const model = request.body?.model ?? request.query.model;
      if (model === undefined) throw new HttpProblem(400, 'model is required (in the body or the query): one of the ids GET /v1/models lists', { code: 'invalid_request' });
      const status = await chat.warm(request.principal!, model);
      reply.code(status === 'warming' ? 202 : 200);
      return { status, model };
    },
  );

  app.post(
    '/v1/chat/threads',
    {
      schema: {
        tags: ['chat'],
        summary: 'Start a new chat thread; it becomes your active thread in its project',
        body: Strict({
          project_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Project id or slug; default: your default project' })),
          title: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: { 201: ThreadResponse, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const t = await chat.createThread(request.principal!, request.body.project_id ?? header(request, 'openai-project'), request.body.title, requestContext(request));
      reply.code(201);
      return threadView(t);
    },
  );

  app.get(
    '/v1/chat/threads',
    {
      schema: {
        tags: ['chat'],
        summary: 'Your chat threads, most recently used first',
        querystring: Strict({ ...OffsetPage, project_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only this project (id or slug)' })) }),
        response: { 200: Type.Object({ threads: Type.Array(ThreadResponse), next_offset: Type.Optional(Type.Integer()) }), ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const q = request.query;
      const rows = await chat.listThreads(request.principal!, q.project_id, q.limit + 1, q.offset, requestContext(request));
      return { threads: rows.slice(0, q.limit).map(threadView), ...(rows.length > q.limit ? { next_offset: q.offset + q.limit } : {}) };
    },
  );

  app.get(
    '/v1/chat/threads/:id',
    { schema: { tags: ['chat'], summary: 'One of your chat threads', params: IdParams, response: { 200: ThreadResponse, ...errors(400, 401, 404) } } },
    async (request) => threadView(await chat.thread(request.principal!, request.params.id)),
  );

  app.patch(
    '/v1/chat/threads/:id',
    {
      schema: {
        tags: ['chat'],
        summary: 'Rename one of your chat threads (the title is stored redacted)',
        params: IdParams,
        body: Strict({ title: Nullable(Type.String({ maxLength: 200 })) }),
        response: { 200: ThreadResponse, ...errors(400, 401, 404) },
      },
    },
    async (request) => threadView(await chat.renameThread(request.principal!, request.params.id, request.body.title)),
  );

  app.delete(
    '/v1/chat/threads/:id',
    {
      schema: {
        tags: ['chat'],
        summary: 'Delete one of your chat threads and its messages, for good',
        description: 'Audited without content; chat audit rows keep the thread id. A completion that named the thread afterwards answers 404; the next one without a name opens a new active thread.',
        params: IdParams,
        response: { 204: Type.Null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await chat.deleteThread(request.principal!, request.params.id, requestContext(request));
      reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/chat/threads/:id/messages',
    {
      schema: {
        tags: ['chat'],
        summary: 'Append a user message to one of your threads (stored redacted)',
        description: 'Clients may only append `user` messages; secrets in `content` are replaced by SECRET_REDACTED before it is stored. The thread becomes your active one in its project.',
        params: IdParams,
        body: Strict({
          role: Type.String({ description: 'Must be `user`' }),
          content: Type.String({ maxLength: 1_048_576 }),
        }),
        response: { 201: MessageResponse, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { message } = await chat.postMessage(request.principal!, request.params.id, request.body.role, request.body.content);
      reply.code(201);
      return messageView(message);
    },
  );

  app.get(
    '/v1/chat/threads/:id/messages',
    {
      schema: {
        tags: ['chat'],
        summary: "A thread's messages, oldest first (as stored: redacted)",
        params: IdParams,
        querystring: Strict(OffsetPage),
        response: { 200: Type.Object({ messages: Type.Array(MessageResponse), next_offset: Type.Optional(Type.Integer()) }), ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const q = request.query;
      const rows = await chat.messages(request.principal!, request.params.id, q.limit + 1, q.offset);
      return { messages: rows.slice(0, q.limit).map(messageView), ...(rows.length > q.limit ? { next_offset: q.offset + q.limit } : {}) };
    },
  );
}
