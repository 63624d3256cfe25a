import { HttpProblem } from '../../server/http/problem';
import type { HttpServer } from '../../server/http/server';
import { JobControlRequest, type JobControlResult } from '../contract/worker-api';
import type { SandboxRunner } from '../sandbox/runner';

/**
 * jobs:pause and jobs:resume (contract: JOB_CONTROL_PATHS): freeze and thaw a running job's
 * sandbox. The job's open jobs:run call is untouched; it simply sees no output meanwhile.
 */
export function jobControlRoutes(app: HttpServer, runner: SandboxRunner): void {
  // A literal ':' in a Fastify path is written '::'.
  app.post('/v1/worker/jobs::pause', { schema: { body: JobControlRequest } }, async (request): Promise<JobControlResult> => {
    if (!runner.pause) throw new HttpProblem(501, 'this node cannot pause jobs');
    const paused = await runner.pause(request.body.job_id);
    request.log.info({ job_id: request.body.job_id, paused }, 'job pause requested');
    return { version: 1, job_id: request.body.job_id, status: paused ? 'paused' : 'not_running' };
  });

  app.post('/v1/worker/jobs::resume', { schema: { body: JobControlRequest } }, async (request): Promise<JobControlResult> => {
    if (!runner.resume) throw new HttpProblem(501, 'this node cannot resume jobs');
    const running = await runner.resume(request.body.job_id);
    request.log.info({ job_id: request.body.job_id, running }, 'job resume requested');
    return { version: 1, job_id: request.body.job_id, status: running ? 'running' : 'not_running' };
  });
}
