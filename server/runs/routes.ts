import { Type, type TLiteral } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { badRequest } from '../http/problem';
import { IdParams, Nullable, Strict, Timestamp, Uuid, decodeCursor, encodeCursor, errors, iso } from '../http/schemas';
import { RUN_STATUSES, isTerminal, type RunStatus } from './status';
import type { RunRow } from './store';
import { MAX_LOG_ENTRIES, MAX_LOG_MESSAGE, MAX_METADATA_BYTES, type RunService } from './service';
import { eventView } from './stream';

// One literal per status of runs/status.ts. TypeBox infers a union's static type from a tuple
// only, hence the cast: the array holds every status, each typed RunStatus.
export const RunStatusEnum = Type.Union(RUN_STATUSES.map((s) => Type.Literal(s)) as unknown as [TLiteral<RunStatus>], {
  description: 'pending, running, waiting, completed, failed or canceled (the last three are terminal)',
});
const LogStreamEnum = Type.Union([Type.Literal('stdout'), Type.Literal('stderr')]);
const Metadata = Type.Record(Type.String(), Type.Unknown(), { description: `Free-form JSON object, at most ${MAX_METADATA_BYTES} bytes (64 KiB) as JSON` });

export const RunResponse = Type.Object({
  id: Uuid,
  run_id: Uuid,
  kind: Type.Union([Type.Literal('task'), Type.Literal('agent_step')], { description: 'task: a run of a task; agent_step: one step of a cynodeai.pm turn (no task; only its user sees it)' }),
  task_id: Nullable(Uuid),
  task_name: Type.Optional(Type.String({ description: "The task's name (in lists and when reading one run)" })),
  processes_running: Type.Optional(Type.Integer({ description: 'Background processes running in its sandbox now (in lists and when reading one run)' })),
  job_id: Nullable(Uuid),
  session_id: Nullable(Uuid),
  parent_run_id: Nullable(Uuid),
  created_by: Nullable(Uuid),
  status: RunStatusEnum,
  terminal: Type.Boolean(),
  paused: Type.Boolean(),
  pause_reason: Nullable(Type.String()),
  last_seq: Type.Integer({ description: 'Seq of the newest event in the run ledger' }),
  error: Nullable(Type.String()),
  metadata: Type.Optional(Type.Union([Metadata, Type.Null()], { description: 'When reading or writing one run; lists leave it out' })),
  started_at: Nullable(Timestamp),
  ended_at: Nullable(Timestamp),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const EventItem = Type.Object({
  seq: Type.Integer(),
  kind: Type.String({ description: 'status, log, event, command, process or transcript' }),
  stream: Nullable(LogStreamEnum),
  message: Nullable(Type.String()),
  data: Type.Unknown(),
  created_at: Timestamp,
});

export const runView = (r: RunRow) => ({
  id: r.id,
  run_id: r.id,
  kind: r.kind,
  task_id: r.task_id,
  // An agent step has no task, so no name (the SQL reads null).
  ...(r.task_name != null ? { task_name: r.task_name } : {}),
  ...(r.processes_running !== undefined ? { processes_running: r.processes_running } : {}),
  job_id: r.job_id,
  session_id: r.session_id,
  parent_run_id: r.parent_run_id,
  created_by: r.created_by,
  status: r.status,
  terminal: isTerminal(r.status),
  paused: r.paused,
  pause_reason: r.pause_reason,
  last_seq: Number(r.last_seq),
  error: r.error,
  ...(r.metadata !== undefined ? { metadata: r.metadata } : {}),
  started_at: iso(r.started_at),
  ended_at: iso(r.ended_at),
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

const isIdCursor = (v: unknown): v is { id: string } => typeof v === 'object' && v !== null && typeof (v as { id: unknown }).id === 'string';
const isSeqCursor = (v: unknown): v is { seq: number } => typeof v === 'object' && v !== null && Number.isSafeInteger((v as { seq: unknown }).seq);

export const RunsPage = Type.Object({ runs: Type.Array(RunResponse), next_cursor: Nullable(Type.String()) });

export const ListRunsQuery = {
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
};

/** The `created_at` range of a list, checked: `since` before `until`. */
export function timeRange(since: string | undefined, until: string | undefined): { since?: Date; until?: Date } {
  const s = since === undefined ? undefined : new Date(since);
  const u = until === undefined ? undefined : new Date(until);
  if (s && u && s >= u) throw badRequest('since must be before until');
  return { since: s, until: u };
}

export function runsPage(page: { runs: RunRow[]; more: boolean }) {
  const last = page.runs.at(-1);
  return { runs: page.runs.map(runView), next_cursor: page.more && last ? encodeCursor({ id: last.id }) : null };
}

export const afterIdOf = (cursor: string | undefined) => decodeCursor(cursor, isIdCursor)?.id;

/** The position a stream starts after: the larger of `Last-Event-ID` and `after`. */
function startOf(lastEventId: string | string[] | undefined, after: number | undefined): number {
  let start = after ?? 0;
  if (lastEventId !== undefined) {
    const v = Array.isArray(lastEventId) ? lastEventId[0] : lastEventId;
    if (v === undefined || !/^\d{1,15}$/.test(v.trim())) throw badRequest('Last-Event-ID must be the seq of an event (a non-negative integer)');
    start = Math.max(start, Number(v.trim()));
  }
  return start;
}

/** Runs: create, list, read, children, status, logs, the event ledger and its live stream. */
export function runRoutes(app: HttpServer, runs: RunService): void {
  app.post(
    '/v1/runs',
    {
      schema: {
        tags: ['runs'],
        summary: 'Record a run of a task (dispatched jobs get theirs automatically)',
        body: Strict({
          task_id: Uuid,
          job_id: Type.Optional(Uuid),
          session_id: Type.Optional(Uuid),
          parent_run_id: Type.Optional(Uuid),
          status: Type.Optional(RunStatusEnum),
          metadata: Type.Optional(Metadata),
        }),
        response: { 201: RunResponse, ...errors(400, 401, 403, 404, 413) },
      },
    },
    async (request, reply) => {
      const run = await runs.create(request.principal!, request.body, requestContext(request));
      reply.code(201);
      return runView(run);
    },
  );

  app.get(
    '/v1/runs',
    {
      schema: {
        tags: ['runs'],
        summary: 'List the runs you may see, newest first',
        querystring: Strict({
          ...ListRunsQuery,
          task_id: Type.Optional(Uuid),
          job_id: Type.Optional(Uuid),
          session_id: Type.Optional(Uuid),
          parent_run_id: Type.Optional(Uuid),
          status: Type.Optional(RunStatusEnum),
          since: Type.Optional(Type.String({ format: 'date-time', description: 'created at or after' })),
          until: Type.Optional(Type.String({ format: 'date-time', description: 'created before' })),
        }),
        response: { 200: RunsPage, ...errors(400, 401) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await runs.list(request.principal!, {
        taskId: q.task_id,
        jobId: q.job_id,
        sessionId: q.session_id,
        parentRunId: q.parent_run_id,
        status: q.status,
        ...timeRange(q.since, q.until),
        afterId: afterIdOf(q.cursor),
        limit: q.limit,
      });
      return runsPage(page);
    },
  );

  app.get(
    '/v1/runs/:id',
    { schema: { tags: ['runs'], summary: 'One run', params: IdParams, response: { 200: RunResponse, ...errors(400, 401, 404) } } },
    async (request) => runView(await runs.get(request.principal!, request.params.id)),
  );

  app.get(
    '/v1/runs/:id/children',
    {
      schema: {
        tags: ['runs'],
        summary: "A run's sub-runs (parent_run_id = this run), newest first",
        params: IdParams,
        querystring: Strict(ListRunsQuery),
        response: { 200: RunsPage, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const run = await runs.get(request.principal!, request.params.id);
      return runsPage(await runs.list(request.principal!, { parentRunId: run.id, afterId: afterIdOf(request.query.cursor), limit: request.query.limit }));
    },
  );

  app.patch(
    '/v1/runs/:id',
    {
      schema: {
        tags: ['runs'],
        summary: "Change a run's status (recorded as a status event) or metadata",
        description: 'A run that has ended (completed, failed, canceled) keeps its status: 409. Without status or metadata it answers the run unchanged.',
        params: IdParams,
        body: Type.Optional(Strict({ status: Type.Optional(RunStatusEnum), metadata: Type.Optional(Metadata), error: Type.Optional(Type.String({ maxLength: 4000 })) })),
        response: { 200: RunResponse, ...errors(400, 401, 403, 404, 409, 413) },
      },
    },
    async (request) => {
      return runView(await runs.update(request.principal!, request.params.id, request.body ?? {}, requestContext(request)));
    },
  );

  app.post(
    '/v1/runs/:id/logs',
    {
      schema: {
        tags: ['runs'],
        summary: "Append log lines to a run's ledger",
        params: IdParams,
        body: Strict({
          entries: Type.Array(Strict({ stream: LogStreamEnum, message: Type.Optional(Type.String({ maxLength: MAX_LOG_MESSAGE })), data: Type.Optional(Type.Unknown()) }), {
            minItems: 1,
            maxItems: MAX_LOG_ENTRIES,
          }),
        }),
        response: { 201: Type.Object({ appended: Type.Integer() }), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const appended = await runs.appendLogs(request.principal!, request.params.id, request.body.entries, requestContext(request));
      reply.code(201);
      return { appended };
    },
  );

  app.get(
    '/v1/runs/:id/logs',
    {
      schema: {
        tags: ['runs'],
        summary: "A run's log lines, by time range and stream",
        params: IdParams,
        querystring: Strict({
          ...ListRunsQuery,
          limit: Type.Integer({ minimum: 1, maximum: 2000, default: 500 }),
          since: Type.Optional(Type.String({ format: 'date-time' })),
          until: Type.Optional(Type.String({ format: 'date-time' })),
          stream: Type.Optional(LogStreamEnum),
        }),
        response: {
          200: Type.Object({
            run_id: Uuid,
            entries: Type.Array(Type.Object({ seq: Type.Integer(), ts: Timestamp, stream: Nullable(LogStreamEnum), message: Nullable(Type.String()), data: Type.Unknown() })),
            next_cursor: Nullable(Type.String()),
          }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const after = decodeCursor(q.cursor, isSeqCursor);
      const page = await runs.logs(request.principal!, request.params.id, { ...timeRange(q.since, q.until), stream: q.stream, afterSeq: after?.seq, limit: q.limit });
      const last = page.entries.at(-1);
      return {
        run_id: page.run.id,
        entries: page.entries.map((e) => ({ seq: e.seq, ts: e.created_at.toISOString(), stream: e.stream, message: e.message, data: e.data })),
        next_cursor: page.more && last ? encodeCursor({ seq: last.seq }) : null,
      };
    },
  );

  app.get(
    '/v1/runs/:id/events',
    {
      schema: {
        tags: ['runs'],
        summary: "Replay a run's event ledger after a seq",
        description: '`after` is the seq of the last event you have (0: from the start); page on with `next_after`. An empty page means you are caught up.',
        params: IdParams,
        querystring: Strict({ after: Type.Integer({ minimum: 0, default: 0 }), limit: Type.Integer({ minimum: 1, maximum: 2000, default: 200 }) }),
        response: {
          200: Type.Object({ items: Type.Array(EventItem), next_after: Type.Integer(), run_status: RunStatusEnum, terminal: Type.Boolean() }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request) => {
      const { after, limit } = request.query;
      const { run, items } = await runs.events(request.principal!, request.params.id, after, limit);
      return { items: items.map(eventView), next_after: items.at(-1)?.seq ?? after, run_status: run.status, terminal: isTerminal(run.status) };
    },
  );

  app.get(
    '/v1/runs/:id/events/stream',
    {
      schema: {
        tags: ['runs'],
        summary: "A run's events as server-sent events, replay first, then live",
        description:
          'Starts after max(`Last-Event-ID`, `after`). Each event: `id: <seq>`, `event: run.event`, `data: {run_id, seq, event}`. A `: heartbeat` comment every ' +
          '`heartbeat_seconds` (default 15). When the run has ended and every event was sent: `event: done` with {run_id, last_seq, status}, and the stream closes. ' +
          'Reconnecting with the last `id:` as `Last-Event-ID` resumes without gaps or repeats.',
        params: IdParams,
        querystring: Strict({ after: Type.Optional(Type.Integer({ minimum: 0 })), heartbeat_seconds: Type.Integer({ minimum: 1, maximum: 300, default: 15 }) }),
        response: { 200: Type.String({ description: 'text/event-stream' }), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      // Checked before any header is sent, so these answer as problem documents.
      const start = startOf(request.headers['last-event-id'], request.query.after);
      const run = await runs.get(request.principal!, request.params.id);
      const sse = runs.openStream(request, reply, request.query.heartbeat_seconds * 1000, { run });
      await runs.streamEvents(sse, run.id, start).catch((err: unknown) => {
        request.log.warn({ err, run_id: run.id }, 'run event stream ended by an error');
        sse.end();
      });
    },
  );

  app.get(
    '/v1/sessions/:id/runs',
    {
      schema: {
        tags: ['sessions'],
        summary: "A session's runs, newest first",
        params: IdParams,
        querystring: Strict(ListRunsQuery),
        response: { 200: RunsPage, ...errors(400, 401, 404) },
      },
    },
    async (request) => runsPage(await runs.listOfSession(request.principal!, request.params.id, { afterId: afterIdOf(request.query.cursor), limit: request.query.limit })),
  );
}
