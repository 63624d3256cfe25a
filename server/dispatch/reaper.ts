import type { Db, Queryable } from '../db';
import { LEASE_GRACE_SECONDS, endLostJob, lockLeasedJob, lostJobs, requeueJob, type AttemptEntry, type ClosedTask, type LostJob, type RunningJob } from './store';
import type { DispatchLogger } from './job-call';

/**
 * Takes back jobs that lost their node: a running job whose node went stale (missed heartbeats),
 * was deleted, whose lease ran out, or whose node said it was interrupted goes back to the queue
 * for another node while attempts remain, else fails with a reason naming the node; a job of a
 * canceled task just ends canceled.
 */
export class Reaper {
  constructor(
    private readonly db: Db,
    /** The dispatcher's identity in `jobs.held_by`, recorded in the attempts log. */
    private readonly holder: string,
    private readonly log: DispatchLogger,
    /** Told, once the transaction committed, of each task a lost job failed. */
    private readonly onClosed: (closed: ClosedTask[]) => void = () => {},
  ) {}

  /** Jobs on stale or deleted nodes, or with an expired lease: requeue, or fail them. */
  async reap(batchSize: number): Promise<{ ended: string[]; requeued: boolean }> {
    const ended: string[] = [];
    let requeued = false;
    const closed: ClosedTask[] = [];
    await this.db.transaction(async (tx) => {
      closed.length = 0;
      for (const job of await lostJobs(tx, batchSize)) {
        const what = await this.settle(tx, job, job.node_lost ? 'node_lost' : 'lease_expired', undefined, closed);
        requeued ||= what === 'requeued';
        ended.push(job.id);
      }
    });
    this.onClosed(closed);
    return { ended, requeued };
  }

  /**
   * The node answered that it was interrupted (it stopped or restarted mid-job): as a node loss,
   * if the job is still under this lease. True when it went back to the queue.
   */
  async lose(job: RunningJob, detail: string): Promise<boolean> {
    const closed: ClosedTask[] = [];
    const what = await this.db.transaction(async (tx) => {
      closed.length = 0;
      const locked = await lockLeasedJob(tx, job.id, job.lease_id);
      return locked ? this.settle(tx, locked, 'node_lost', detail, closed) : null;
    });
    this.onClosed(closed);
    return what === 'requeued';
  }

  private async settle(tx: Queryable, job: LostJob, outcome: 'node_lost' | 'lease_expired', detail: string | undefined, closed: ClosedTask[]): Promise<'requeued' | 'failed' | 'canceled'> {
    const entry: AttemptEntry = { attempt: job.attempt, node_id: job.node_id, outcome, at: new Date().toISOString(), by: this.holder, ...(detail ? { detail: detail.slice(0, 500) } : {}) };
    const node = job.node_slug ? `node "${job.node_slug}"` : 'a node that was since removed';
    let what: 'requeued' | 'failed' | 'canceled';
    if (job.task_closed) {
      await endLostJob(tx, { jobId: job.id, taskId: job.task_id, status: 'canceled', code: null, reason: 'canceled', entry });
      what = 'canceled';
    } else if (job.attempt < job.max_attempts) {
      await requeueJob(tx, job.id, entry);
      what = 'requeued';
    } else {
      const why =
        outcome === 'lease_expired'
          ? `${node} gave no result within the job's time limit plus ${LEASE_GRACE_SECONDS} s`
          : detail
            ? `${node} was interrupted while running it (it stopped or restarted)`
            : `${node} stopped sending heartbeats while running it`;
      await endLostJob(tx, { jobId: job.id, taskId: job.task_id, status: 'failed', code: outcome, reason: `The job was lost: ${why}; it was tried ${job.attempt} time(s), the limit.`, entry }, closed);
      what = 'failed';
    }
    this.log.warn({ job_id: job.id, task_id: job.task_id, node_id: job.node_id, attempt: job.attempt, outcome, then: what, ...(detail ? { detail } : {}) }, 'job lost its node');
    return what;
  }
}
