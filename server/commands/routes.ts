import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Nullable, Strict, Timestamp, Uuid, errors, iso } from '../http/schemas';
import type { CommandService } from './service';
import type { CommandRow } from './store';

const CommandTypeEnum = Type.Union([Type.Literal('pause'), Type.Literal('resume'), Type.Literal('cancel'), Type.Literal('emit_event')], {
  description: 'pause, resume, cancel (stops the sandbox; tree-wide) or emit_event (payload {name, data?} becomes an event on the run)',
});
const CommandStateEnum = Type.Union([Type.Literal('accepted'), Type.Literal('applied'), Type.Literal('rejected')]);
const CommandId = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S', description: 'Chosen by the client; repeating it returns the first answer' });

const Accepted = Type.Object({
  command_id: Type.String(),
  run_id: Uuid,
  type: CommandTypeEnum,
  accepted: Type.Boolean(),
  duplicate: Type.Boolean({ description: 'true when this command_id was sent before: the answer is the first one, and nothing runs again' }),
  seq: Type.Integer({ description: 'Position in the command inbox; commands of a run apply in this order' }),
  state: CommandStateEnum,
});

const CommandResponse = Type.Object({
  command_id: Type.String(),
  run_id: Uuid,
  type: CommandTypeEnum,
  state: CommandStateEnum,
  reason: Nullable(Type.String({ description: 'Why it was rejected' })),
  received_at: Timestamp,
  applied_at: Nullable(Timestamp),
});

const commandView = (c: CommandRow) => ({
  command_id: c.command_id,
  run_id: c.run_id,
  type: c.type,
  state: c.state,
  reason: c.reason,
  received_at: c.received_at.toISOString(),
  applied_at: iso(c.applied_at),
});

/** Durable commands on runs: accepted at once (202), applied by the runner, outcome readable and in the run's ledger. */
export function commandRoutes(app: HttpServer, commands: CommandService): void {
  app.post(
    '/v1/runs/:id/commands',
    {
      schema: {
        tags: ['runs'],
        summary: 'Send a run a command (pause, resume, cancel, emit_event)',
        description:
          'Accepted durably and applied shortly after, in order per run; the outcome (applied or rejected, and why) becomes a `command` event in the run ledger and is readable at GET /v1/commands/{command_id}. Repeating a command_id returns the first answer with duplicate: true.',
        params: IdParams,
        body: Strict({ command_id: CommandId, type: CommandTypeEnum, payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }),
        response: { 202: Accepted, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { command, duplicate } = await commands.submit(request.principal!, request.params.id, request.body, requestContext(request));
      reply.code(202);
      return { command_id: command.command_id, run_id: command.run_id, type: command.type, accepted: true, duplicate, seq: command.seq, state: command.state };
    },
  );

  app.get(
    '/v1/commands/:command_id',
    {
      schema: {
        tags: ['runs'],
        summary: 'One of your commands and its outcome',
        params: Strict({ command_id: CommandId }),
        response: { 200: CommandResponse, ...errors(400, 401, 404) },
      },
    },
    async (request) => commandView(await commands.get(request.principal!, request.params.command_id)),
  );
}
