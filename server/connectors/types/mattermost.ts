import { Type } from '@sinclair/typebox';
import { driverOf, NO_RETRY, READ_RETRY, type OperationSpec } from './contract';
import { baseUrlConfig, callJsonApi, record, segment, text, type JsonApi } from './web-api';

/** Mattermost's REST API v4, with a personal access or bot token sent as a bearer token. */

const api: JsonApi = { service: 'Mattermost' };

const Id = Type.String({ pattern: '^[A-Za-z0-9]{1,64}$' });

const Message = Type.Object({ id: Type.String(), user_id: Type.String(), text: Type.String(), created_at: Type.String() });

const postMessage: OperationSpec = {
  name: 'post_message',
  title: 'Post a message',
  description: 'Posts a message to a channel, optionally as a reply in a thread.',
  requestSchema: Type.Object(
    { channel_id: Id, text: Type.String({ minLength: 1, maxLength: 16383 }), root_id: Type.Optional(Id) },
    { additionalProperties: false },
  ),
  resultSchema: Type.Object({ id: Type.String(), channel_id: Type.String(), created_at: Type.String() }),
  execution: 'sync',
  timeoutMs: 15_000,
  // A repeated post is a second message.
  idempotent: false,
  retry: NO_RETRY,
};

const readHistory: OperationSpec = {
  name: 'read_history',
  title: 'Read channel history',
  description: 'Reads the latest messages of a channel, newest first; `before` pages further back.',
  requestSchema: Type.Object(
    { channel_id: Id, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 30 })), before: Type.Optional(Id) },
    { additionalProperties: false },
  ),
  resultSchema: Type.Object({ messages: Type.Array(Message) }),
  execution: 'sync',
  timeoutMs: 15_000,
  idempotent: true,
  retry: READ_RETRY,
};

function iso(ms: unknown): string {
  return typeof ms === 'number' ? new Date(ms).toISOString() : '';
}

export const mattermostDriver = driverOf(
  {
    type: 'mattermost',
    title: 'Mattermost',
    description: 'Post to and read channels of a Mattermost server.',
    configSchema: baseUrlConfig(undefined),
    credentialTypes: ['bearer_token'],
    credentialRequired: true,
    operations: [postMessage, readHistory],
  },
  {
    async post_message(ctx, p) {
      const body: Record<string, unknown> = { channel_id: p.channel_id, message: p.text };
      if (p.root_id) body.root_id = p.root_id;
      const post = record(await callJsonApi(api, ctx, { method: 'POST', path: '/api/v4/posts', body, timeoutMs: ctx.operation.timeoutMs }));
      return { id: text(post.id), channel_id: text(post.channel_id), created_at: iso(post.create_at) };
    },
    async read_history(ctx, p) {
      const channel = segment(p.channel_id, 'channel_id');
      const answer = record(
        await callJsonApi(api, ctx, {
          method: 'GET',
          path: `/api/v4/channels/${channel}/posts`,
          query: { per_page: p.limit ?? 30, before: p.before },
          timeoutMs: ctx.operation.timeoutMs,
        }),
      );
      const posts = record(answer.posts);
      const order = Array.isArray(answer.order) ? answer.order : [];
      const messages = order.map((id) => record(posts[String(id)])).map((post) => ({
        id: text(post.id),
        user_id: text(post.user_id),
        text: text(post.message),
        created_at: iso(post.create_at),
      }));
      return { messages };
    },
  },
  async (ctx) => {
    await callJsonApi(api, ctx, { method: 'GET', path: '/api/v4/users/me', timeoutMs: 10_000 });
  },
);
