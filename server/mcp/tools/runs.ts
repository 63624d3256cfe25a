import { Type } from '@sinclair/typebox';
import type { RunService } from '../../runs/service';
import { afterIdOf, runView, runsPage } from '../../runs/routes';
import { eventView } from '../../runs/stream';
import { isTerminal } from '../../runs/status';
import { notFound } from '../../http/problem';
import type { McpCaller } from '../caller';
import { defineTool, UUID_PATTERN, type ToolDef } from '../catalog';

const RunId = Type.String({ pattern: UUID_PATTERN, description: 'Run id (task.get and run listings name them)' });

/**
 * An agent bound to a task reads only that task's runs: the pipeline's scoped-id check covers
 * `task_id` arguments, and a run id names its task only through the run.
 */
async function requireInScope(runs: RunService, caller: McpCaller, runId: string): Promise<void> {
  const bound = caller.agent?.taskId;
  if (bound !== undefined && (await runs.get(caller.principal, runId)).task_id !== bound) throw notFound('Run');
}

/** Runs, as GET /v1/runs, one run, its events and its logs: reading only. */
export function runTools(runs: RunService): ToolDef[] {
  return [
    defineTool({
      name: 'run.list',
      title: 'List runs',
      description: "The runs you may see, newest first: a task's (`task_id`), a session's (`session_id`), or all; page on with `cursor` (`next_cursor`).",
      input: Type.Object(
        {
          task_id: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
          session_id: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          cursor: Type.Optional(Type.String({ maxLength: 512 })),
        },
        { additionalProperties: false },
      ),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => runsPage(await runs.list(caller.principal, { taskId: caller.agent?.taskId ?? args.task_id, sessionId: args.session_id, afterId: afterIdOf(args.cursor), limit: args.limit ?? 50 })),
    }),
    defineTool({
      name: 'run.get',
      title: 'Get a run',
      description: 'One run: its task, job, session, status and times.',
      input: Type.Object({ run_id: RunId }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => {
        const run = await runs.get(caller.principal, args.run_id);
        if (caller.agent?.taskId !== undefined && run.task_id !== caller.agent.taskId) throw notFound('Run');
        return runView(run);
      },
    }),
    defineTool({
      name: 'run.events',
      title: "Read a run's events",
      description: "The run's event ledger after `after` (the seq of the last event you have; 0 from the start), at most `limit` events. Page on with `next_after`; an empty page means you are caught up.",
      input: Type.Object(
        { run_id: RunId, after: Type.Optional(Type.Integer({ minimum: 0, default: 0 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })) },
        { additionalProperties: false },
      ),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => {
        await requireInScope(runs, caller, args.run_id);
        const after = args.after ?? 0;
        const { run, items } = await runs.events(caller.principal, args.run_id, after, args.limit ?? 100);
        return { items: items.map(eventView), next_after: items.at(-1)?.seq ?? after, run_status: run.status, terminal: isTerminal(run.status) };
      },
    }),
    defineTool({
      name: 'run.logs',
      title: "Read a run's logs",
      description: "The run's log lines in order, optionally one stream; page on with `after_seq` (the last seq you have).",
      input: Type.Object(
        {
          run_id: RunId,
          stream: Type.Optional(Type.Union([Type.Literal('stdout'), Type.Literal('stderr')])),
          after_seq: Type.Optional(Type.Integer({ minimum: 0 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 2000, default: 500 })),
        },
        { additionalProperties: false },
      ),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => {
        await requireInScope(runs, caller, args.run_id);
        const page = await runs.logs(caller.principal, args.run_id, { stream: args.stream, afterSeq: args.after_seq, limit: args.limit ?? 500 });
        return {
          run_id: page.run.id,
          entries: page.entries.map((e) => ({ seq: e.seq, ts: e.created_at.toISOString(), stream: e.stream, message: e.message })),
          more: page.more,
        };
      },
    }),
  ];
}
