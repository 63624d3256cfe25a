// The OpenAI-compatible chat surface as declared in the gateway's OpenAPI document. Every object
// admits fields it does not name: OpenAI clients send more than CyNode uses, and those are ignored.
import { Type } from '@sinclair/typebox';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

const Open = { additionalProperties: true } as const;

const ContentPart = Type.Object({ type: Type.String({ description: '`text` parts are read; others (images) are ignored' }), text: Type.Optional(Type.String()) }, Open);

export const ChatCompletionMessage = Type.Object(
  {
    role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant')]),
    content: Type.Union([Type.String(), Type.Array(ContentPart), Type.Null()]),
  },
  Open,
);

const Numeric = Type.Optional(Type.Union([Type.Number(), Type.Null()]));

export const ChatCompletionRequest = Type.Object(
  {
    model: Type.Optional(Type.Union([Type.String({ description: 'A model id from GET /v1/models; absent: the project manager agent' }), Type.Null()])),
    messages: Type.Array(ChatCompletionMessage, { minItems: 1, description: 'At least one user message' }),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    stream_options: Type.Optional(Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, Open), Type.Null()])),
    temperature: Numeric,
    top_p: Numeric,
    seed: Numeric,
    max_tokens: Numeric,
    max_completion_tokens: Numeric,
    frequency_penalty: Numeric,
    presence_penalty: Numeric,
    stop: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String()), Type.Null()])),
  },
  Open,
);

const Usage = Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer(), total_tokens: Type.Integer() });

/** The answer of a completion without `stream: true` (with it: server-sent chat.completion.chunk events). */
export const ChatCompletion = Type.Object({
  id: Type.String(),
  object: Type.Literal('chat.completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(
    Type.Object({
      index: Type.Integer(),
      message: Type.Object({ role: Type.Literal('assistant'), content: Type.String() }),
      finish_reason: Type.Union([Type.Literal('stop'), Type.Literal('length')]),
    }),
  ),
  usage: Usage,
});

export const ModelList = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({ id: Type.String(), object: Type.Literal('model'), created: Type.Integer(), owned_by: Type.String() })),
});

/**
 * The completion route checks its body itself, with OpenAI-style messages (request.ts
 * parseChatRequest): the schema above documents the body, and validation only requires a JSON
 * object, as it did before the schema was declared.
 */
export const objectBodyOnly: FastifySchemaCompiler<unknown> = ({ httpPart }) => {
  if (httpPart !== 'body') return () => true;
  const check = (data: unknown) => {
    const ok = typeof data === 'object' && data !== null && !Array.isArray(data);
    check.errors = ok ? null : [{ keyword: 'type', instancePath: '', schemaPath: '#/type', params: { type: 'object' }, message: 'must be object' }];
    return ok;
  };
  check.errors = null as FastifySchemaValidationError[] | null;
  return check;
};
