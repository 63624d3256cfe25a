import type { Db, Queryable } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { conflict, notFound } from '../http/problem';
import { countRunningJobs, deleteNodeRow, findNode, findNodeView, listNodeViews, runningJobsOf, setAdminState, type AdminState, type NodeRow, type NodeView, type RunningJob } from './store';

/** Who acts and the request behind it: both go into the audit row. */
export interface NodeAdminAct {
  by: Principal;
  ctx: RequestContext;
}

export type NodeAction = 'enable' | 'disable' | 'drain';

const TARGET: Record<NodeAction, { state: AdminState; audit: string }> = {
  enable: { state: 'enabled', audit: 'node_enabled' },
  disable: { state: 'disabled', audit: 'node_disabled' },
  drain: { state: 'draining', audit: 'node_drained' },
};

/**
 * Node administration through the gateway. Admin state is the
 * operator's decision and separate from liveness: a disabled or draining node keeps reporting
 * and keeps running what it has, but gets nothing new. Permission checks are the routes' job.
 */
export class NodeAdminService {
  constructor(private readonly db: Db) {}

  list(): Promise<NodeView[]> {
    return listNodeViews(this.db);
  }

  async get(id: string): Promise<{ node: NodeView; jobs: RunningJob[] }> {
    const node = await findNodeView(this.db, id);
    if (!node) throw notFound('Node');
    return { node, jobs: await runningJobsOf(this.db, id) };
  }

  /** Sets the admin state; audited every time it is asked, even when it was already so. */
  async act(act: NodeAdminAct, id: string, action: NodeAction): Promise<{ id: string; admin_state: AdminState }> {
    const target = TARGET[action];
    return this.db.transaction(async (tx) => {
      const node = await lockedNode(tx, id);
      await setAdminState(tx, id, target.state);
      await audit(tx, act, target.audit, node, { from: node.admin_state, to: target.state });
      return { id, admin_state: target.state };
    });
  }

  /**
   * Deletes the node and, with its row, its Worker API token and config; its node JWT leads
   * nowhere from now on. Refused while jobs run on it (drain it first). Registering again
   * creates a new node with a new id.
   */
  async delete(act: NodeAdminAct, id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      // The row lock also waits for a dispatcher that is just leasing a job to this node (its
      // foreign key check holds a share lock on the row), so such a job is counted below.
      const node = await lockedNode(tx, id);
      const running = await countRunningJobs(tx, id);
      if (running > 0) throw conflict(`The node is running ${running} job${running === 1 ? '' : 's'}; drain it and delete it once they have finished`);
      await deleteNodeRow(tx, id);
      await audit(tx, act, 'node_deleted', node, {});
    });
  }
}

async function lockedNode(tx: Queryable, id: string): Promise<NodeRow> {
  const node = await findNode(tx, id, { forUpdate: true });
  if (!node) throw notFound('Node');
  return node;
}

function audit(tx: Queryable, act: NodeAdminAct, action: string, node: NodeRow, details: Record<string, unknown>): Promise<void> {
  return appendAudit(
    tx,
    { category: 'admin', action, outcome: 'success', actorId: act.by.userId, actorHandle: act.by.handle, resourceType: 'node', resourceId: node.id, scopeType: 'system', details: { node_slug: node.node_slug, ...details } },
    act.ctx,
  );
}
