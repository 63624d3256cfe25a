import type { Queryable } from '../db';
import { cancelQueuedJobs, lockTask, markTaskCanceled } from './store';

/**
 * Cancels a task inside the caller's transaction (a run command canceling its run tree): its
 * queued jobs end now and its running ones are returned, to be stopped on their nodes after the
 * commit. A task that has already ended keeps its end.
 */
export async function cancelTaskIn(tx: Queryable, taskId: string): Promise<Array<{ id: string; node_id: string | null }>> {
  // Jobs before the task: the dispatcher and the task service lock in that order too.
  const running = await cancelQueuedJobs(tx, taskId);
  const task = await lockTask(tx, taskId);
  if (task && !task.closed) await markTaskCanceled(tx, task.id);
  return running;
}
