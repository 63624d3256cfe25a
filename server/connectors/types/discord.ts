import { Type } from '@sinclair/typebox';
import { driverOf, NO_RETRY, READ_RETRY, type OperationSpec } from './contract';
import { baseUrlConfig, callJsonApi, record, segment, text, type JsonApi } from './web-api';

/** Discord's HTTP API v10 as a bot: the bot token travels as `Authorization: Bot <token>`. */

const api: JsonApi = { service: 'Discord', defaultBaseUrl: 'https://discord.com', bearerScheme: 'Bot' };

const Snowflake = Type.String({ pattern: '^[0-9]{1,20}$' });

const Message = Type.Object({ id: Type.String(), author: Type.String(), text: Type.String(), created_at: Type.String() });

const postMessage: OperationSpec = {
  name: 'post_message',
  title: 'Post a message',
  description: 'Posts a message to a channel.',
  requestSchema: Type.Object({ channel_id: Snowflake, text: Type.String({ minLength: 1, maxLength: 2000 }) }, { additionalProperties: false }),
  resultSchema: Type.Object({ id: Type.String(), channel_id: Type.String(), created_at: Type.String() }),
  execution: 'sync',
  timeoutMs: 15_000,
  idempotent: false,
  retry: NO_RETRY,
};

const readHistory: OperationSpec = {
  name: 'read_history',
  title: 'Read channel history',
  description: 'Reads the latest messages of a channel, newest first; `before` pages further back.',
  requestSchema: Type.Object(
    { channel_id: Snowflake, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })), before: Type.Optional(Snowflake) },
    { additionalProperties: false },
  ),
  resultSchema: Type.Object({ messages: Type.Array(Message) }),
  execution: 'sync',
  timeoutMs: 15_000,
  idempotent: true,
  retry: READ_RETRY,
};

export const discordDriver = driverOf(
  {
    type: 'discord',
    title: 'Discord',
    description: 'Post to and read channels as a Discord bot.',
    configSchema: baseUrlConfig(api.defaultBaseUrl),
    credentialTypes: ['bearer_token'],
    credentialRequired: true,
    operations: [postMessage, readHistory],
  },
  {
    async post_message(ctx, p) {
      const channel = segment(p.channel_id, 'channel_id');
      const message = record(
        await callJsonApi(api, ctx, {
          method: 'POST',
          path: `/api/v10/channels/${channel}/messages`,
          // Mentions in a message written for CyNode should not ping anyone.
          body: { content: p.text, allowed_mentions: { parse: [] } },
          timeoutMs: ctx.operation.timeoutMs,
        }),
      );
      return { id: text(message.id), channel_id: text(message.channel_id), created_at: text(message.timestamp) };
    },
    async read_history(ctx, p) {
      const channel = segment(p.channel_id, 'channel_id');
      const answer = await callJsonApi(api, ctx, {
        method: 'GET',
        path: `/api/v10/channels/${channel}/messages`,
        query: { limit: p.limit ?? 50, before: p.before },
        timeoutMs: ctx.operation.timeoutMs,
      });
      const messages = (Array.isArray(answer) ? answer : []).map(record).map((m) => ({
        id: text(m.id),
        author: text(record(m.author).username),
        text: text(m.content),
        created_at: text(m.timestamp),
      }));
      return { messages };
    },
  },
  async (ctx) => {
    await callJsonApi(api, ctx, { method: 'GET', path: '/api/v10/users/@me', timeoutMs: 10_000 });
  },
);
