import { Type } from '@sinclair/typebox';
import type { ProcessService } from '../../processes/service';
import { badRequest } from '../../http/problem';
import { processView } from '../../processes/routes';
import { defineTool, UUID_PATTERN, type ToolDef } from '../catalog';

const RunId = Type.String({ pattern: UUID_PATTERN, description: 'The run whose sandbox holds the processes' });
const ProcessId = Type.String({ pattern: UUID_PATTERN });

/** Background processes in a run's sandbox, as /v1/runs/{id}/processes: the same checks and audit. */
export function processTools(processes: ProcessService): ToolDef[] {
  return [
    defineTool({
      name: 'process.list',
      title: 'List sandbox processes',
      description: "The background processes started in a run's sandbox, with their status and exit code.",
      input: Type.Object({ run_id: RunId }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => ({ processes: (await processes.list(caller.principal, args.run_id)).map(processView) }),
    }),
    defineTool({
      name: 'process.get',
      title: 'Get a sandbox process',
      description: 'One background process and its output so far (live while it runs, what was kept once it ended).',
      input: Type.Object({ run_id: RunId, process_id: ProcessId }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => {
        const row = await processes.get(caller.principal, args.run_id, args.process_id);
        const out = await processes.output(caller.principal, args.run_id, args.process_id);
        return { ...processView(row), stdout: out.stdout, stderr: out.stderr, truncated: out.truncated };
      },
    }),
    defineTool({
      name: 'process.start',
      title: 'Start a sandbox process',
      description:
        "Runs `command` (an argv; no shell unless you name one, e.g. [\"sh\", \"-c\", \"…\"]) in the background inside the sandbox of the run's running job. " +
        '`env` values reach only the process: they are never logged or stored. A conflict when the run has no running sandbox job.',
      input: Type.Object(
        {
          run_id: RunId,
          command: Type.Array(Type.String({ maxLength: 100_000 }), { minItems: 1, maxItems: 64 }),
          env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' }), Type.String({ maxLength: 100_000 }), { maxProperties: 64 })),
        },
        { additionalProperties: false },
      ),
      readOnly: false,
      destructive: false,
      idempotent: false,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        if (args.command[0] === '') throw badRequest('command[0] must name a program');
        const p = await processes.start(caller.principal, args.run_id, { command: args.command, ...(args.env ? { env: args.env } : {}) }, ctx);
        return { process_id: p.id, status: p.status };
      },
    }),
    defineTool({
      name: 'process.stop',
      title: 'Stop a sandbox process',
      description: 'Terminates a background process (SIGTERM to its process group, SIGKILL after a grace). One that has already ended keeps its status.',
      input: Type.Object({ run_id: RunId, process_id: ProcessId }, { additionalProperties: false }),
      readOnly: false,
      destructive: true,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        const p = await processes.terminate(caller.principal, args.run_id, args.process_id, ctx);
        return { process_id: p.id, status: p.status };
      },
    }),
  ];
}
