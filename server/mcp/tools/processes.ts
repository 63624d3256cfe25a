import { Type } from '@sinclair/typebox';
import type { ProcessService } from '../../processes/service';
import { processView } from '../../processes/routes';
import { defineTool, UUID_PATTERN, type ToolDef } from '../catalog';

const RunId = Type.String({ pattern: UUID_PATTERN, description: 'The run whose sandbox holds the processes' });
const ProcessId = Type.String({ pattern: UUID_PATTERN });

/** Background processes in a run's sandbox, as /v1/runs/{id}/processes. */
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
  ];
}
