import { HttpProblem, conflict, notFound, tooManyRequests } from '../../server/http/problem';
import type { HttpServer } from '../../server/http/server';
import { PROCESS_PATHS, ProcessStartRequest, ProcessStatusRequest, ProcessTerminateRequest, type ProcessState } from '../contract/worker-api';
import { NoSandboxError, SandboxProcesses, TooManyProcessesError } from '../sandbox/exec';

/** How long a refused caller should wait before asking again, in seconds. */
const RETRY_AFTER_SECONDS = 5;

const DOTS_ONLY = /^\.+$/;

/**
 * Background processes in running sandboxes (contract: PROCESS_PATHS), behind the same bearer
 * token as jobs:run. Only jobs this node runs now qualify: the job table, not the container
 * engine, says which sandboxes are this node's.
 */
export function processRoutes(app: HttpServer, o: { runningJobIds(): string[] }): void {
  const processes = new SandboxProcesses({ log: (m) => app.log.warn(m) });
  app.addHook('onClose', async () => processes.close());

  const known = (state: ProcessState | null): ProcessState => {
    if (!state) throw notFound('Process');
    return state;
  };

  // A literal ':' in a Fastify path is written '::'.
  app.post(PROCESS_PATHS.start.replace(':', '::'), { schema: { body: ProcessStartRequest } }, async (request) => {
    const { job_id, process_id, command, env } = request.body;
    if (DOTS_ONLY.test(process_id)) throw new HttpProblem(400, 'process_id must not consist of dots only');
    if (!o.runningJobIds().includes(job_id)) throw conflict(`job ${job_id} is not running on this node`);
    try {
      const state = await processes.start(job_id, process_id, command, env ?? {});
      // Names only: the values may be secrets.
      request.log.info({ job_id, process_id, env_names: Object.keys(env ?? {}) }, 'process started in a sandbox');
      return state;
    } catch (err) {
      if (err instanceof NoSandboxError) throw conflict(err.message);
      if (err instanceof TooManyProcessesError) throw tooManyRequests(err.message, RETRY_AFTER_SECONDS);
      throw err;
    }
  });

  app.post(PROCESS_PATHS.status.replace(':', '::'), { schema: { body: ProcessStatusRequest } }, async (request) =>
    known(await processes.status(request.body.process_id, request.body.wait_ms ?? 0)),
  );

  app.post(PROCESS_PATHS.terminate.replace(':', '::'), { schema: { body: ProcessTerminateRequest } }, async (request) => {
    const state = known(await processes.terminate(request.body.process_id));
    request.log.info({ process_id: request.body.process_id, status: state.status }, 'process terminate requested');
    return state;
  });
}
