import type { Db } from '../db';
import type { JobRunRequest, JobRunResult, SandboxSpec } from '../../node-manager/contract/worker-api';
import { NodeCallError, type NodeClient } from '../nodes/node-client';
import { nodeTarget } from '../nodes/queries';
import type { Ledger } from '../runs/ledger';
import { JobLogs } from './job-logs';
import { LEASE_GRACE_SECONDS, leaseAlive, type RunningJob } from './store';
import { RETRY_FIRST_MS, RETRY_MAX_MS, message, sleep, timeoutOf, type DispatchLogger, type JobOutcome, type LeasedJobs } from './job-call';

/**
 * A sandbox job's call to its node: POST jobs:run and wait for the result. Transient failures
 * are retried with the same job_id (the node runs it at most once) while the lease holds and the
 * node is not stale; after that the job is the lost-job sweep's to requeue or fail.
 */
export class SandboxJobs {
  constructor(
    private readonly db: Db,
    private readonly client: NodeClient,
    private readonly leased: LeasedJobs,
    private readonly log: DispatchLogger,
    /** Where the output lines go as the node streams them; without it they arrive with the result. */
    private readonly ledger?: Ledger,
  ) {}

  async run(job: RunningJob, signal: AbortSignal): Promise<void> {
    const timeoutSeconds = timeoutOf(job.payload);
    const request: JobRunRequest = { version: 1, task_id: job.task_id, job_id: job.id, sandbox: sandboxOf(job.payload) };
    const logs = this.ledger ? await JobLogs.open(this.db, this.ledger, job.id) : undefined;
    let delay = RETRY_FIRST_MS;
    for (;;) {
      if (signal.aborted) return;
      let result: JobRunResult;
      try {
        const target = job.node_id ? await this.leased.target(job.node_id) : null;
        if (!target) {
          // Deleted node: the sweep sees it on its next round. Missing URL or token cannot heal.
          if (job.node_id && (await nodeTarget(this.db, job.node_id))) {
            await this.leased.end(job, { status: 'failed', result: null, failureCode: 'worker_error', reason: 'The node has no Worker API address or token on record.', outcome: 'worker_error' });
          }
          return;
        }
        if (logs) request.log_after = logs.lastSeq;
        result = await this.client.run(target, request, { signal, timeoutMs: (timeoutSeconds + LEASE_GRACE_SECONDS) * 1000, onLog: logs?.onLog });
        await logs?.settled();
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof NodeCallError && err.transient) {
          if (!(await leaseAlive(this.db, job.id, job.lease_id))) return;
          this.log.warn({ job_id: job.id, node_id: job.node_id, err: err.message, retry_in_ms: delay }, 'Worker API call failed; retrying the same job');
          await sleep(delay, signal);
          delay = Math.min(delay * 2, RETRY_MAX_MS);
          continue;
        }
        // What the node said, and its address, are for the admin's log; the task's owner gets the fact.
        const detail = message(err);
        this.log.warn({ job_id: job.id, node_id: job.node_id, err: detail }, 'the node refused the job');
        await this.leased.end(job, { status: 'failed', result: null, failureCode: 'worker_error', reason: 'The node refused the job; an admin finds the details in the server log.', outcome: 'worker_error', detail });
        return;
      }
      if (interrupted(result)) {
        this.log.warn({ job_id: job.id, node_id: job.node_id }, 'the node was interrupted while running the job');
        await this.leased.lose(job, result.stderr);
        return;
      }
      if (result.job_id !== job.id) {
        await this.leased.end(job, { status: 'failed', result: null, failureCode: 'worker_error', reason: 'The node answered for another job.', outcome: 'worker_error' });
        return;
      }
      const outcome = outcomeOf(result, timeoutSeconds);
      if (outcome.failureCode === 'sandbox_error') this.log.warn({ job_id: job.id, node_id: job.node_id, err: result.stderr.slice(0, 500) }, 'the sandbox could not start');
      await this.leased.end(job, { ...outcome, lines: logs?.streamed ? [] : undefined });
      return;
    }
  }
}

/**
 * The node's way of saying "I stopped (or restarted) while this job ran": failed, exit code -1,
 * stderr beginning `interrupted:` (node-manager/worker-api/job-table.ts). Not the job's failure
 * but the node's, so it is retried elsewhere. A structured flag in the contract would be better.
 */
function interrupted(r: JobRunResult): boolean {
  return r.status === 'failed' && r.exit_code === -1 && r.stderr.startsWith('interrupted:');
}

/** The Worker API sandbox spec from a job's payload (written by the task service). */
function sandboxOf(payload: Record<string, unknown>): SandboxSpec {
  const spec: SandboxSpec = { command: Array.isArray(payload.command) ? payload.command.map(String) : [], timeout_seconds: timeoutOf(payload) };
  if (typeof payload.image === 'string') spec.image = payload.image;
  if (typeof payload.network_policy === 'string') spec.network_policy = payload.network_policy;
  if (payload.env && typeof payload.env === 'object') spec.env = payload.env as Record<string, string>;
  if (payload.files && typeof payload.files === 'object') spec.files = payload.files as Record<string, string>;
  if (payload.use_inference === true) spec.use_inference = true;
  return spec;
}

/** How a node's answer ends the job, and the task's failure reason in words. */
function outcomeOf(r: JobRunResult, timeoutSeconds: number): JobOutcome & { result: JobRunResult } {
  switch (r.status) {
    case 'completed':
      return { status: 'completed', result: r, failureCode: null, reason: null, outcome: 'completed' };
    case 'timeout':
      return { status: 'failed', result: r, failureCode: 'timeout', reason: `timed out after ${timeoutSeconds} s`, outcome: 'timeout' };
    case 'canceled':
      return { status: 'canceled', result: r, failureCode: null, reason: 'The job was stopped on its node.', outcome: 'canceled' };
    default: {
      if (r.exit_code === -1) {
        return { status: 'failed', result: r, failureCode: 'sandbox_error', reason: "The sandbox could not start on its node; the job's stderr says why.", outcome: 'failed' };
      }
      return { status: 'failed', result: r, failureCode: 'exit_nonzero', reason: `exit code ${r.exit_code ?? 'unknown'}`, outcome: 'failed' };
    }
  }
}
