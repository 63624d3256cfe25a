import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { badRequest } from '../http/problem';
import { IdParams, Nullable, Strict, Timestamp, Uuid, errors, iso } from '../http/schemas';
import type { ProcessService } from './service';
import type { ProcessRow } from './store';

const ProcessStatusEnum = Type.Union([Type.Literal('running'), Type.Literal('exited'), Type.Literal('terminated'), Type.Literal('failed')], {
  description: 'running, or how it ended: exited (by itself), terminated (on request, or with its sandbox), failed (could not be followed)',
});

/** NUL cannot pass through an argv or an environment. */
const NO_NUL = '^[^\\u0000]*$';

const ProcessResponse = Type.Object({
  process_id: Uuid,
  run_id: Uuid,
  task_id: Uuid,
  job_id: Uuid,
  command: Type.Array(Type.String()),
  env_names: Type.Array(Type.String(), { description: 'Names of the variables it was given; their values are never kept' }),
  status: ProcessStatusEnum,
  exit_code: Nullable(Type.Integer()),
  reason: Nullable(Type.String()),
  started_by: Nullable(Uuid),
  started_at: Timestamp,
  ended_at: Nullable(Timestamp),
});

const ProcessParams = Strict({ id: Uuid, pid: Uuid });

export const processView = (p: ProcessRow) => ({
  process_id: p.id,
  run_id: p.run_id,
  task_id: p.task_id,
  job_id: p.job_id,
  command: p.command,
  env_names: p.env_names,
  status: p.status,
  exit_code: p.exit_code,
  reason: p.reason,
  started_by: p.started_by,
  started_at: p.started_at.toISOString(),
  ended_at: iso(p.ended_at),
});

/** Background processes inside a run's sandbox: start, list, read, output, terminate. */
export function processRoutes(app: HttpServer, processes: ProcessService): void {
  app.post(
    '/v1/runs/:id/processes',
    {
      schema: {
        tags: ['runs'],
        summary: "Start a background process in the run's sandbox",
        description:
          "Runs `command` (an argv, no shell unless you name one) inside the container of the run's running job, as the sandbox's user. " +
          'It ends with the sandbox at the latest. `env` values reach only the process: they are never logged or stored, only their names. ' +
          '409 when the run has no running sandbox job.',
        params: IdParams,
        body: Strict({
          command: Type.Array(Type.String({ maxLength: 100_000, pattern: NO_NUL }), { minItems: 1, maxItems: 64 }),
          env: Type.Optional(
            Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' }), Type.String({ maxLength: 100_000, pattern: NO_NUL }), {
              maxProperties: 64,
              additionalProperties: false,
              description: 'Variable names: letters, digits and underscores, not starting with a digit',
            }),
          ),
        }),
        response: { 201: Type.Object({ process_id: Uuid, status: ProcessStatusEnum }), ...errors(400, 401, 403, 404, 409, 429, 502) },
      },
    },
    async (request, reply) => {
      if (request.body.command[0] === '') throw badRequest('command[0] must name a program');
      const p = await processes.start(request.principal!, request.params.id, request.body, requestContext(request));
      reply.code(201);
      return { process_id: p.id, status: p.status };
    },
  );

  app.get(
    '/v1/runs/:id/processes',
    {
      schema: {
        tags: ['runs'],
        summary: "A run's background processes, oldest first",
        params: IdParams,
        response: { 200: Type.Object({ processes: Type.Array(ProcessResponse) }), ...errors(400, 401, 404) },
      },
    },
    async (request) => ({ processes: (await processes.list(request.principal!, request.params.id)).map(processView) }),
  );

  app.get(
    '/v1/runs/:id/processes/:pid',
    { schema: { tags: ['runs'], summary: 'One background process', params: ProcessParams, response: { 200: ProcessResponse, ...errors(400, 401, 404) } } },
    async (request) => processView(await processes.get(request.principal!, request.params.id, request.params.pid)),
  );

  app.get(
    '/v1/runs/:id/processes/:pid/output',
    {
      schema: {
        tags: ['runs'],
        summary: "A background process's output",
        description: 'Live from the node while it runs, as kept once it ended; at most 256 KiB per stream (`truncated` says when more was written).',
        params: ProcessParams,
        response: { 200: Type.Object({ stdout: Type.String(), stderr: Type.String(), truncated: Type.Boolean() }), ...errors(400, 401, 404, 503) },
      },
    },
    async (request) => processes.output(request.principal!, request.params.id, request.params.pid),
  );

  app.post(
    '/v1/runs/:id/processes/:pid/terminate',
    {
      schema: {
        tags: ['runs'],
        summary: 'Terminate a background process (SIGTERM to its process group, SIGKILL after a grace)',
        description: 'A process that has already ended keeps its status.',
        params: ProcessParams,
        response: { 202: Type.Object({ process_id: Uuid, status: ProcessStatusEnum }), ...errors(400, 401, 403, 404, 502) },
      },
    },
    async (request, reply) => {
      const p = await processes.terminate(request.principal!, request.params.id, request.params.pid, requestContext(request));
      reply.code(202);
      return { process_id: p.id, status: p.status };
    },
  );
}
