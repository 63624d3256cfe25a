import { setTimeout as timeout } from 'node:timers/promises';
import { Type } from '@sinclair/typebox';
import { MAX_PROMPT_BYTES, type TaskService } from '../../tasks/service';
import { jobView, output, taskView } from '../../tasks/routes';
import { defineTool, UUID_PATTERN, type ToolDef } from '../catalog';

/** Well below the MCP tool time limit (60 s by default), so a wait answers rather than times out. */
const MAX_WAIT_SECONDS = 30;
const WAIT_POLL_MS = 250;
const sleep = (ms: number, signal: AbortSignal): Promise<void> => timeout(ms, undefined, { signal }).catch(() => {});

const TaskRef = Type.String({ minLength: 1, maxLength: 200, description: 'Task id, or the name of one of your tasks' });
const Status = Type.Union(['queued', 'running', 'completed', 'failed', 'canceled', 'superseded'].map((s) => Type.Literal(s)));

/** Tasks, as POST/GET /v1/tasks: create, get, list, cancel, result. */
export function taskTools(tasks: TaskService): ToolDef[] {
  return [
    defineTool({
      name: 'task.create',
      title: 'Create a task',
      description:
        'Queues a task; it runs asynchronously (read it with task.get or task.result). `input_mode`: `prompt` (default; answered by a model), `script` (run with `sh` in a sandbox) ' +
        'or `commands` (each non-empty line runs with `sh -c` in a sandbox, stopping at the first that fails). Same inputs as POST /v1/tasks.',
      input: Type.Object(
        {
          prompt: Type.String({ minLength: 1, maxLength: MAX_PROMPT_BYTES, description: 'Task text, script or commands' }),
          input_mode: Type.Optional(Type.Union([Type.Literal('prompt'), Type.Literal('script'), Type.Literal('commands')])),
          task_name: Type.Optional(Type.String({ maxLength: 200 })),
          project_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Project id or slug' })),
          timeout_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_800 })),
          image: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$', description: 'Sandbox image instead of the default' })),
          model: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          session_id: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
        },
        { additionalProperties: false },
      ),
      readOnly: false,
      destructive: false,
      idempotent: false,
      openWorld: false,
      run: async (args, { caller, ctx }) => taskView(await tasks.create(caller.principal, args, ctx)),
    }),
    defineTool({
      name: 'task.get',
      title: 'Get a task',
      description: 'One task, by id or by your task name: its status, mode, project and times.',
      input: Type.Object({ task_id: TaskRef }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => taskView(await tasks.get(caller.principal, args.task_id)),
    }),
    defineTool({
      name: 'task.list',
      title: 'List tasks',
      description: 'The tasks you created or may read, newest first; page on with `cursor` (the last task id of the previous page).',
      input: Type.Object(
        {
          status: Type.Optional(Status),
          project_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          cursor: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
        },
        { additionalProperties: false },
      ),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        const page = await tasks.list(caller.principal, { status: args.status as never, project: args.project_id, afterId: args.cursor, limit: args.limit ?? 50 }, ctx);
        const last = page.tasks.at(-1);
        return { tasks: page.tasks.map(taskView), next_cursor: page.more && last ? last.id : null };
      },
    }),
    defineTool({
      name: 'task.cancel',
      title: 'Cancel a task',
      description: 'Cancels a queued or running task (its sandbox is stopped). Canceling a canceled task changes nothing; a completed or failed one is a conflict.',
      input: Type.Object({ task_id: TaskRef }, { additionalProperties: false }),
      readOnly: false,
      destructive: true,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        const task = await tasks.cancel(caller.principal, args.task_id, ctx);
        return { task_id: task.id, task_name: task.name, canceled: true };
      },
    }),
    defineTool({
      name: 'task.result',
      title: 'Get a task result',
      description:
        "A task's jobs and results: stdout, stderr, exit code, failure reason. While the task runs, `status` says so and the output is what has finished. " +
        '`wait_seconds` (up to 30) waits that long at most for the task to end before answering.',
      input: Type.Object(
        { task_id: TaskRef, wait_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_SECONDS, description: 'Wait up to this long for the task to end' })) },
        { additionalProperties: false },
      ),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, signal }) => {
        let { task, jobs } = await tasks.withJobs(caller.principal, args.task_id);
        // Polled: the task is read with the caller's rights each time, and the wait stays bounded (below the tool time limit).
        const until = Date.now() + (args.wait_seconds ?? 0) * 1000;
        while (!task.closed && Date.now() < until && !signal.aborted) {
          await sleep(WAIT_POLL_MS, signal);
          ({ task, jobs } = await tasks.withJobs(caller.principal, task.id));
        }
        const out = output(jobs);
        return {
          task_id: task.id,
          task_name: task.name,
          status: task.status,
          closed: task.closed,
          jobs: jobs.map(jobView),
          stdout: out.stdout,
          stderr: out.stderr,
          exit_code: out.exitCode,
          failure_reason: task.failure_reason,
          summary: task.summary,
        };
      },
    }),
  ];
}
