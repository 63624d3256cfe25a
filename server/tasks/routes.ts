import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { Nullable, PageQuery, Strict, Timestamp, Uuid, decodeCursor, encodeCursor, errors, iso } from '../http/schemas';
import type { RunService } from '../runs/service';
import { MAX_PROMPT_BYTES, type TaskService } from './service';
import type { TaskJobRow, TaskRow } from './store';

const StatusEnum = Type.Union(
  [Type.Literal('queued'), Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed'), Type.Literal('canceled'), Type.Literal('superseded')],
  { description: 'queued, running, completed, failed, canceled or superseded' },
);

const TaskResponse = Type.Object({
  id: Uuid,
  task_id: Uuid,
  task_name: Type.String(),
  status: StatusEnum,
  closed: Type.Boolean({ description: 'true once the task has ended (completed, failed, canceled, superseded)' }),
  input_mode: Type.Union([Type.Literal('prompt'), Type.Literal('script'), Type.Literal('commands')]),
  prompt: Type.String(),
  project_id: Uuid,
  created_by: Uuid,
  session_id: Nullable(Uuid),
  failure_reason: Nullable(Type.String({ description: 'Why a failed task failed' })),
  summary: Nullable(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
  started_at: Nullable(Timestamp),
  ended_at: Nullable(Timestamp),
});

const JobResponse = Type.Object({
  id: Uuid,
  status: Type.String({ description: 'queued, running, completed, failed or canceled' }),
  node_id: Nullable(Uuid),
  attempt: Type.Integer({ description: 'How many times the job was handed to a node' }),
  result: Nullable(Type.String({ description: "The node's result document (JSON) as a string" })),
  failure_code: Nullable(Type.String({ description: 'e.g. exit_nonzero, timeout, node_lost, no_dispatchable_node, no_inference_path, worker_error' })),
  started_at: Nullable(Timestamp),
  ended_at: Nullable(Timestamp),
});

const ResultResponse = Type.Object({
  task_id: Uuid,
  task_name: Type.String(),
  status: StatusEnum,
  jobs: Type.Array(JobResponse),
  stdout: Type.String(),
  stderr: Type.String(),
  exit_code: Nullable(Type.Integer({ description: 'Of the last job that ran to an exit' })),
  failure_reason: Nullable(Type.String()),
  summary: Nullable(Type.String()),
});

const Stream = Type.Union([Type.Literal('stdout'), Type.Literal('stderr'), Type.Literal('all')]);

const LogsResponse = Type.Object({
  task_id: Uuid,
  task_name: Type.String(),
  stream: Stream,
  stdout: Type.String(),
  stderr: Type.String(),
  lines: Type.Array(Type.String(), { description: 'The selected output split into lines (stdout first for `all`)' }),
});

/** A task id, or one of your own task names. */
const RefParams = Strict({ id: Type.String({ minLength: 1, maxLength: 200, description: 'Task id, or the name of one of your tasks' }) });

export const taskView = (t: TaskRow) => ({
  id: t.id,
  task_id: t.id,
  task_name: t.name,
  status: t.status,
  closed: t.closed,
  input_mode: t.input_mode,
  prompt: t.prompt,
  project_id: t.project_id,
  created_by: t.created_by,
  session_id: t.session_id ?? null,
  failure_reason: t.failure_reason,
  summary: t.summary,
  created_at: t.created_at.toISOString(),
  updated_at: t.updated_at.toISOString(),
  started_at: iso(t.started_at),
  ended_at: iso(t.ended_at),
});

export const jobView = (j: TaskJobRow) => ({
  id: j.id,
  status: j.status,
  node_id: j.node_id,
  attempt: j.attempt,
  result: j.result === null ? null : JSON.stringify(j.result),
  failure_code: j.failure_code,
  started_at: iso(j.started_at),
  ended_at: iso(j.ended_at),
});

/** Output of every job that has a result, in job order (one job per task today). */
export function output(jobs: TaskJobRow[]): { stdout: string; stderr: string; exitCode: number | null } {
  let stdout = '';
  let stderr = '';
  let exitCode: number | null = null;
  for (const j of jobs) {
    const r = j.result as { stdout?: unknown; stderr?: unknown; exit_code?: unknown } | null;
    if (!r) continue;
    if (typeof r.stdout === 'string') stdout += r.stdout;
    if (typeof r.stderr === 'string') stderr += r.stderr;
    exitCode = typeof r.exit_code === 'number' ? r.exit_code : null;
  }
  return { stdout, stderr, exitCode };
}

const isIdCursor = (v: unknown): v is { id: string } => typeof v === 'object' && v !== null && typeof (v as { id: unknown }).id === 'string';

/** Tasks: create, list, read, result, logs, cancel. */
export function taskRoutes(app: HttpServer, tasks: TaskService, runs: RunService): void {

  app.post(
    '/v1/tasks',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Create a task; it is queued and runs asynchronously',
        description:
          '`input_mode`: `prompt` (default; answered by inference on a node serving it, the answer is the result\'s stdout), `script` (the prompt is a shell script run with `sh`) or `commands` ' +
          '(each non-empty line runs with `sh -c`, in order, stopping at the first that fails). The task lands in your default ' +
          'project unless `project_id` (id or slug) names one where you may create tasks. `use_inference: true` on a `script` or `commands` task lets its sandbox reach the node\'s model through an inference proxy on a Unix socket (env `INFERENCE_PROXY_URL`, `INFERENCE_PROXY_TOKEN`; the sandbox keeps no network); prompt tasks ignore it. `use_sba` is accepted and ignored (legacy clients).',
        body: Strict({
          prompt: Type.String({ description: `Task text, script or commands; at most ${MAX_PROMPT_BYTES} bytes` }),
          input_mode: Type.Optional(Type.Union([Type.Literal('prompt'), Type.Literal('script'), Type.Literal('commands')])),
          task_name: Type.Optional(Type.String({ maxLength: 200, description: 'Normalized (lowercase, dashes) and made unique among your tasks with -2, -3…' })),
          project_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Project id or slug' })),
          timeout_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_800 })),
          image: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$', description: 'Sandbox image instead of the default' })),
          model: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Prompt tasks: the model to answer with (one GET /v1/models lists); default: the first model of the node chosen' })),
          session_id: Type.Optional(Uuid),
          use_inference: Type.Optional(Type.Boolean({ description: 'Script and commands tasks: the sandbox may call the node\'s model through its inference proxy (default false)' })),
          use_sba: Type.Optional(Type.Boolean({ description: 'Ignored (legacy)' })),
        }),
        response: { 201: TaskResponse, ...errors(400, 401, 403, 404, 409, 413) },
      },
    },
    async (request, reply) => {
      const { use_sba: _s, ...input } = request.body;
      const task = await tasks.create(request.principal!, input, requestContext(request));
      reply.code(201);
      return taskView(task);
    },
  );

  app.get(
    '/v1/tasks',
    {
      schema: {
        tags: ['tasks'],
        summary: 'List the tasks you created or may read, newest first',
        querystring: Strict({
          ...PageQuery,
          status: Type.Optional(StatusEnum),
          project_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only this project (id or slug)' })),
        }),
        response: { 200: Type.Object({ tasks: Type.Array(TaskResponse), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const q = request.query;
      const after = decodeCursor(q.cursor, isIdCursor);
      const page = await tasks.list(request.principal!, { status: q.status, project: q.project_id, afterId: after?.id, limit: q.limit }, requestContext(request));
      const last = page.tasks.at(-1);
      return { tasks: page.tasks.map(taskView), ...(page.more && last ? { next_cursor: encodeCursor({ id: last.id }) } : {}) };
    },
  );

  app.get(
    '/v1/tasks/:id',
    { schema: { tags: ['tasks'], summary: 'One task, by id or by your task name', params: RefParams, response: { 200: TaskResponse, ...errors(400, 401, 404) } } },
    async (request) => taskView(await tasks.get(request.principal!, request.params.id)),
  );

  app.get(
    '/v1/tasks/:id/result',
    {
      schema: {
        tags: ['tasks'],
        summary: "A task's jobs and their results, with the output and exit code",
        params: RefParams,
        response: { 200: ResultResponse, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const { task, jobs } = await tasks.withJobs(request.principal!, request.params.id);
      const out = output(jobs);
      return {
        task_id: task.id,
        task_name: task.name,
        status: task.status,
        jobs: jobs.map(jobView),
        stdout: out.stdout,
        stderr: out.stderr,
        exit_code: out.exitCode,
        failure_reason: task.failure_reason,
        summary: task.summary,
      };
    },
  );

  app.get(
    '/v1/tasks/:id/logs',
    {
      schema: {
        tags: ['tasks'],
        summary: "A task's output, over all its runs",
        description:
          'Read from the run ledger: every log line of every run of the task, runs in order. With `follow=true`, text/event-stream instead: `event: log` ' +
          '({run_id, seq, stream, message, ts}) for the lines so far and then live ones, and `event: done` ({task_id, status}) once the task has ended. ' +
          'To resume exactly after a disconnect, stream a run: GET /v1/runs/{id}/events/stream with Last-Event-ID.',
        params: RefParams,
        querystring: Strict({ stream: Type.Optional(Stream), follow: Type.Optional(Type.Boolean()), heartbeat_seconds: Type.Integer({ minimum: 1, maximum: 300, default: 15 }) }),
        response: { 200: LogsResponse, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const stream = request.query.stream ?? 'all';
      const task = await tasks.get(request.principal!, request.params.id);
      if (request.query.follow) {
        const sse = runs.openStream(request, reply, request.query.heartbeat_seconds * 1000, { task });
        await runs.streamTaskLogs(sse, task.id, stream === 'all' ? undefined : stream).catch((err: unknown) => {
          request.log.warn({ err, task_id: task.id }, 'task log stream ended by an error');
          sse.end();
        });
        return reply;
      }
      const lines = await runs.taskLogs(task.id);
      const of = (which: 'stdout' | 'stderr') => (stream === 'all' || stream === which ? lines.filter((l) => l.stream === which).map((l) => l.message ?? '') : []);
      const stdout = of('stdout');
      const stderr = of('stderr');
      const text = (ls: string[]) => ls.map((l) => `${l}\n`).join('');
      return { task_id: task.id, task_name: task.name, stream, stdout: text(stdout), stderr: text(stderr), lines: [...stdout, ...stderr] };
    },
  );

  app.post(
    '/v1/tasks/:id/cancel',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Cancel a queued or running task (its container is stopped)',
        description: 'Idempotent for a canceled task; 409 for one that already completed or failed. The creator, or someone holding task.cancel in its project.',
        params: RefParams,
        response: { 200: Type.Object({ task_id: Uuid, task_name: Type.String(), canceled: Type.Literal(true) }), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const task = await tasks.cancel(request.principal!, request.params.id, requestContext(request));
      return { task_id: task.id, task_name: task.name, canceled: true as const };
    },
  );
}
