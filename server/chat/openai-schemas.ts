// The OpenAI-compatible chat surface as declared in the gateway's OpenAPI document. Every object
// admits fields it does not name: OpenAI clients send more than CyNode uses, and those are ignored.
import { Type } from '@sinclair/typebox';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

const Open = { additionalProperties: true } as const;

const ContentPart = Type.Object(
  {
    type: Type.String({ description: '`text` and `image_url` parts are read (images for models with the vision capability); others are ignored' }),
    text: Type.Optional(Type.String()),
    image_url: Type.Optional(Type.Object({ url: Type.String({ description: 'A data:image/…;base64 URL only: the gateway fetches nothing' }) }, Open)),
  },
  Open,
);

const ToolCall = Type.Object({
  id: Type.String({ description: 'Minted by the gateway (`call_…`): Ollama gives calls without ids' }),
  type: Type.Literal('function'),
  function: Type.Object({ name: Type.String(), arguments: Type.String({ description: 'A JSON object, as a string' }) }),
});

export const ChatCompletionMessage = Type.Object(
  {
    role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('tool')]),
    content: Type.Union([Type.String(), Type.Array(ContentPart), Type.Null()]),
    tool_calls: Type.Optional(Type.Array(ToolCall, { description: 'An assistant message: the calls it made, sent back as received' })),
    tool_call_id: Type.Optional(Type.String({ description: 'A tool message: the id of the call it answers' })),
  },
  Open,
);

const FunctionTool = Type.Object(
  {
    type: Type.Literal('function'),
    function: Type.Object({ name: Type.String({ pattern: '^[a-zA-Z0-9_-]{1,64}$' }), description: Type.Optional(Type.String()), parameters: Type.Optional(Type.Object({}, Open)) }, Open),
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
    tools: Type.Optional(Type.Union([Type.Array(FunctionTool, { maxItems: 128 }), Type.Null()], { description: 'Function tools; the model must list the tools capability' })),
    tool_choice: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('auto'), Type.Literal('required'), Type.Object({ type: Type.Literal('function'), function: Type.Object({ name: Type.String() }) }), Type.Null()], {
        description: '`none` sends no tools; `required` and a named function cannot force a call (Ollama has no such switch); a named function is the only tool sent',
      }),
    ),
    parallel_tool_calls: Type.Optional(Type.Union([Type.Boolean({ description: 'false: only the first call of an answer is passed on' }), Type.Null()])),
    response_format: Type.Optional(
      Type.Union([
        Type.Object({ type: Type.Literal('text') }, Open),
        Type.Object({ type: Type.Literal('json_object') }, Open),
        Type.Object({ type: Type.Literal('json_schema'), json_schema: Type.Object({ name: Type.Optional(Type.String()), schema: Type.Object({}, Open) }, Open) }, Open),
        Type.Null(),
      ]),
    ),
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
      message: Type.Object({ role: Type.Literal('assistant'), content: Type.Union([Type.String(), Type.Null()], { description: 'null when the answer is only tool calls' }), tool_calls: Type.Optional(Type.Array(ToolCall)) }),
      finish_reason: Type.Union([Type.Literal('stop'), Type.Literal('length'), Type.Literal('tool_calls')]),
    }),
  ),
  usage: Usage,
});

export const EmbeddingRequest = Type.Object(
  {
    model: Type.String({ description: 'A model id from GET /v1/models whose node lists the embedding capability' }),
    input: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 2048 })]),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { description: 'base64: little-endian float32' })),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
    user: Type.Optional(Type.String()),
  },
  Open,
);

export const EmbeddingList = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({ object: Type.Literal('embedding'), index: Type.Integer(), embedding: Type.Union([Type.Array(Type.Number()), Type.String({ description: 'base64 of little-endian float32' })]) })),
  model: Type.String(),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
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
