import { Type } from '@sinclair/typebox';
import { ConnectorError, driverOf, NO_RETRY, READ_RETRY, type HealthContext, type OperationSpec } from './contract';
import { baseUrlConfig, callJsonApi, record, text, type JsonApiCall, type JsonApi } from './web-api';

/**
 * Slack's Web API with a bot token as bearer. Slack answers most failures with HTTP 200 and
 * `{ok: false, error}`: the error code decides the failure class.
 */

const api: JsonApi = { service: 'Slack', defaultBaseUrl: 'https://slack.com' };

const Channel = Type.String({ pattern: '^[A-Za-z0-9_#-]{1,80}$' });
const Ts = Type.String({ pattern: '^[0-9]{1,12}\\.[0-9]{1,8}$' });

const postMessage: OperationSpec = {
  name: 'post_message',
  title: 'Post a message',
  description: 'Posts a message to a channel, optionally as a reply in a thread (thread_ts).',
  requestSchema: Type.Object(
    { channel: Channel, text: Type.String({ minLength: 1, maxLength: 40000 }), thread_ts: Type.Optional(Ts) },
    { additionalProperties: false },
  ),
  resultSchema: Type.Object({ channel: Type.String(), ts: Type.String() }),
  execution: 'sync',
  timeoutMs: 15_000,
  idempotent: false,
  retry: NO_RETRY,
};

const readHistory: OperationSpec = {
  name: 'read_history',
  title: 'Read channel history',
  description: 'Reads the latest messages of a channel, newest first; `cursor` pages further back.',
  requestSchema: Type.Object(
    { channel: Channel, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 30 })), cursor: Type.Optional(Type.String({ maxLength: 512 })) },
    { additionalProperties: false },
  ),
  resultSchema: Type.Object({
    messages: Type.Array(Type.Object({ ts: Type.String(), user: Type.String(), text: Type.String() })),
    next_cursor: Type.Optional(Type.String()),
  }),
  execution: 'sync',
  timeoutMs: 15_000,
  idempotent: true,
  retry: READ_RETRY,
};

const CREDENTIAL_ERRORS = new Set([
  'not_authed', 'invalid_auth', 'account_inactive', 'token_revoked', 'token_expired', 'no_permission',
  'missing_scope', 'not_allowed_token_type', 'ekm_access_denied', 'access_denied',
]);
const TRANSIENT_ERRORS = new Set(['ratelimited', 'rate_limited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'team_added_to_org']);
const INVALID_ERRORS = new Set([
  'channel_not_found', 'not_in_channel', 'is_archived', 'msg_too_long', 'no_text', 'invalid_blocks', 'invalid_arguments',
  'invalid_arg_name', 'invalid_cursor', 'invalid_ts_latest', 'invalid_ts_oldest', 'thread_not_found', 'too_many_attachments',
]);

/** The failure an `{ok: false, error}` answer stands for. */
export function slackFailure(code: string): ConnectorError {
  // Slack's codes are short snake_case words; anything else is not repeated to the user.
  const shown = /^[a-z_]{1,64}$/.test(code) ? code : 'unknown_error';
  if (CREDENTIAL_ERRORS.has(shown)) return new ConnectorError('permanent', `Slack refused the credential (${shown}); check or rotate it`);
  if (TRANSIENT_ERRORS.has(shown)) return new ConnectorError('transient', `Slack could not do it right now (${shown})`);
  if (INVALID_ERRORS.has(shown)) return new ConnectorError('validation_error', `Slack rejected the request (${shown})`);
  return new ConnectorError('permanent', `Slack refused the request (${shown})`);
}

async function callSlack(ctx: HealthContext, call: JsonApiCall): Promise<Record<string, unknown>> {
  const answer = record(await callJsonApi(api, ctx, call));
  if (answer.ok !== true) throw slackFailure(text(answer.error));
  return answer;
}

export const slackDriver = driverOf(
  {
    type: 'slack',
    title: 'Slack',
    description: 'Post to and read channels of a Slack workspace with a bot token.',
    configSchema: baseUrlConfig(api.defaultBaseUrl),
    credentialTypes: ['bearer_token'],
    credentialRequired: true,
    operations: [postMessage, readHistory],
  },
  {
    async post_message(ctx, p) {
      const body: Record<string, unknown> = { channel: p.channel, text: p.text };
      if (p.thread_ts) body.thread_ts = p.thread_ts;
      const answer = await callSlack(ctx, { method: 'POST', path: '/api/chat.postMessage', body, timeoutMs: ctx.operation.timeoutMs });
      return { channel: text(answer.channel), ts: text(answer.ts) };
    },
    async read_history(ctx, p) {
      const answer = await callSlack(ctx, {
        method: 'GET',
        path: '/api/conversations.history',
        query: { channel: p.channel, limit: p.limit ?? 30, cursor: p.cursor },
        timeoutMs: ctx.operation.timeoutMs,
      });
      const messages = (Array.isArray(answer.messages) ? answer.messages : []).map(record).map((m) => ({
        ts: text(m.ts),
        user: text(m.user),
        text: text(m.text),
      }));
      const next = text(record(answer.response_metadata).next_cursor);
      return next ? { messages, next_cursor: next } : { messages };
    },
  },
  async (ctx) => {
    await callSlack(ctx, { method: 'POST', path: '/api/auth.test', timeoutMs: 10_000 });
  },
);
