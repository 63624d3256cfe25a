import type { Db } from '../db';
import { workerApiTarget } from '../nodes/queries';
import type { NodeClient, NodeTarget } from '../nodes/node-client';
import type { SandboxControl } from './runner';

/** Pause and resume through the Worker API of the node running the job (jobs:pause, jobs:resume). */
export class NodeSandboxControl implements SandboxControl {
  constructor(
    private readonly db: Db,
    private readonly client: NodeClient,
    /** The node's Worker API bearer token, opened from the vault; null when it has none. */
    private readonly workerToken: (nodeId: string) => Promise<string | null>,
  ) {}

  async pause(job: { id: string; taskId: string; nodeId: string }) {
    return (await this.client.pause(await this.target(job.nodeId), { version: 1, task_id: job.taskId, job_id: job.id })).status;
  }

  async resume(job: { id: string; taskId: string; nodeId: string }) {
    return (await this.client.resume(await this.target(job.nodeId), { version: 1, task_id: job.taskId, job_id: job.id })).status;
  }

  private async target(nodeId: string): Promise<NodeTarget> {
    const target = await workerApiTarget(this.db, nodeId, this.workerToken);
    if (!target) throw new Error('the node running the job cannot be reached (no Worker API address or token)');
    return target;
  }
}
