import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import type { ConnectorAct } from './access';
import type { InvokeRequest, InvokeResult } from './invocations';
import { findInstance } from './store';
import { declaredOperation, NODE_EVENT_ACTION, renderParams, type EventFields, type EventName } from './subscriptions';
import { dueSubscriptions, nodeFacts, taskFacts, type DueSubscription } from './subscriptions-store';

/** Runs an operation as a user: the connector operation service (policy, limits, history). */
export interface EventInvoker {
  invoke(act: ConnectorAct, instanceId: string, request: InvokeRequest): Promise<InvokeResult>;
}

/** Where delivery failures of CyNode's own (not of a connector) are reported: never with a secret. */
export type DeliveryLog = (obj: Record<string, unknown>, msg: string) => void;

export interface EventDeliveryOptions {
  /** Waits before the 2nd and 3rd attempt after a transient failure; default 1 s and 4 s. */
  backoffMs?: number[];
  log?: DeliveryLog;
}

/** A task's end, as the dispatcher tells of it (dispatch/store.ts ClosedTask). */
export interface TaskEnd {
  taskId: string;
  status: 'completed' | 'failed';
}

const ATTEMPTS = 3;
/** Failure classes worth another attempt: the peer or the connector's limit may pass. */
const TRANSIENT = new Set(['transient', 'quota_exceeded']);

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * Delivers events to the connector instances subscribed to them (docs/architecture.md):
 * best effort, in the background, each through ConnectorOperationService.invoke as the
 * subscription's owner, so the policy, the instance's state, its rate limit and its history apply
 * as to any call. Up to three attempts, with backoff, on transient failures only; every attempt is
 * audited (`connector.event_delivery`) with its outcome. The message holds names, ids and
 * outcomes, never a secret; the instance's credential is opened by the executor alone.
 */
export class EventDelivery {
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;
  /** Cuts a backoff short when the process stops: the delivery then ends after its last audited attempt. */
  private readonly stopping = new AbortController();
  private readonly backoffMs: number[];
  private log: DeliveryLog;

  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly invoker: EventInvoker,
    opts: EventDeliveryOptions = {},
  ) {
    this.backoffMs = opts.backoffMs ?? [1_000, 4_000];
    this.log = opts.log ?? (() => {});
  }

  logTo(log: DeliveryLog): void {
    this.log = log;
  }

  /** The dispatcher closed a task: its creator's subscriptions to the event get it. Never blocks. */
  taskClosed(end: TaskEnd): void {
    this.background(() => this.deliverTask(end), { task_id: end.taskId });
  }

  /** The liveness sweep found nodes silent: subscriptions to node.lost get one message per node. Never blocks. */
  nodesLost(nodeIds: string[]): void {
    this.background(() => this.deliverNodes(nodeIds), { node_ids: nodeIds });
  }

  /** Resolves once every delivery started so far has ended. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Takes no new event and waits for those in flight (before the database closes). */
  async close(): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    await this.idle();
  }

  private background(work: () => Promise<void>, about: Record<string, unknown>): void {
    if (this.closed) return;
    const p = work()
      .catch((err: unknown) => this.log({ ...about, err: err instanceof Error ? err.message : 'unknown error' }, 'delivering an event through connectors failed'))
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private async deliverTask(end: TaskEnd): Promise<void> {
    const task = await taskFacts(this.db, end.taskId);
    if (!task) return;
    const event: EventName = end.status === 'completed' ? 'task.completed' : 'task.failed';
    const subs = await dueSubscriptions(this.db, event, task.created_by);
    if (subs.length === 0) return;
    const outcome = end.status === 'completed' ? 'completed' : `failed: ${task.failure_reason ?? 'no reason was recorded'}`;
    const fields: EventFields = {
      event,
      subject: clip(`CyNode: task "${task.name}" ${end.status}`, 300),
      // Short enough for every chat type's message limit (Discord's 2,000 characters is the least).
      text: clip(`Task "${task.name}" (${task.id}) ${outcome}`, 1_800),
      task_id: task.id,
      task_name: task.name,
      task_status: end.status,
      failure_reason: task.failure_reason ?? '',
      node_id: '',
      node_name: '',
    };
    await Promise.all(subs.map((sub) => this.deliver(sub, fields, task.id)));
  }

  private async deliverNodes(nodeIds: string[]): Promise<void> {
    const subs = await dueSubscriptions(this.db, 'node.lost', null);
    if (subs.length === 0) return;
    for (const node of await nodeFacts(this.db, nodeIds)) {
      const name = node.display_name ?? node.node_slug;
      const seen = node.last_seen_at ? `; last heard from at ${node.last_seen_at.toISOString()}` : '';
      const fields: EventFields = {
        event: 'node.lost',
        subject: clip(`CyNode: node "${name}" lost`, 300),
        text: `Node "${name}" (${node.id}) stopped sending heartbeats${seen}. Its running jobs go to other nodes or fail.`,
        task_id: '',
        task_name: '',
        task_status: '',
        failure_reason: '',
        node_id: node.id,
        node_name: name,
      };
      await Promise.all(subs.map((sub) => this.deliver(sub, fields, null)));
    }
  }

  /** One event to one subscription: attempts until success, a failure that is not transient, or the third. */
  private async deliver(sub: DueSubscription, fields: EventFields, taskId: string | null): Promise<void> {
    const by: Principal = { userId: sub.owner_user_id, handle: sub.owner_handle, via: 'local' };
    // One request id for the delivery: its attempts, their history rows and policy decisions share it.
    const ctx: RequestContext = { requestId: `event-${randomUUID()}`, ip: 'internal', userAgent: 'cynode event delivery' };
    const audit = (attempt: number, outcome: 'success' | 'failure', details: Record<string, unknown>) =>
      appendAudit(
        this.db,
        {
          category: 'admin',
          action: 'connector.event_delivery',
          outcome,
          actorId: sub.owner_user_id,
          actorHandle: sub.owner_handle,
          resourceType: 'connector',
          resourceId: sub.instance_id,
          scopeType: 'system',
          details: { subscription_id: sub.id, event: fields.event, operation: sub.operation, attempt, ...(taskId ? { task_id: taskId } : {}), ...(fields.node_id ? { node_id: fields.node_id } : {}), ...details },
        },
        ctx,
      );

    // Refusals that no connector call would change: recorded as the first attempt, not retried.
    if (!sub.owner_active) return audit(1, 'failure', { code: 'subscriber_inactive', message: 'The subscriber is disabled' });
    if (fields.event === 'node.lost' && !(await this.authz.can(by, NODE_EVENT_ACTION))) {
      return audit(1, 'failure', { code: 'forbidden', message: 'The subscriber may no longer manage nodes' });
    }
    const instance = await findInstance(this.db, sub.instance_id);
    let params: Record<string, unknown>;
    try {
      params = renderParams(instance ? declaredOperation(instance, sub.operation) : undefined, sub.params, fields);
    } catch (e) {
      return audit(1, 'failure', { code: 'validation_error', message: e instanceof Error ? e.message : 'the operation is unknown' });
    }

    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        const r = await this.invoker.invoke({ by, ctx }, sub.instance_id, { operation: sub.operation, params, ...(taskId ? { taskId } : {}) });
        await audit(attempt, 'success', { operation_id: r.operationId, provider_status: r.providerStatus });
        return;
      } catch (e) {
        if (!(e instanceof HttpProblem)) throw e;
        const code = typeof e.extensions.code === 'string' ? e.extensions.code : e.status === 404 ? 'not_found' : e.status === 403 ? 'forbidden' : `http_${e.status}`;
        const retry = TRANSIENT.has(code) && attempt < ATTEMPTS;
        await audit(attempt, 'failure', {
          code,
          status: e.status,
          message: clip(e.detail, 500),
          ...(typeof e.extensions.operation_id === 'string' ? { operation_id: e.extensions.operation_id } : {}),
          retried: retry,
        });
        if (!retry) return;
        const waited = await sleep(this.backoffMs[attempt - 1] ?? this.backoffMs.at(-1) ?? 1_000, true, { signal: this.stopping.signal }).catch(() => false);
        if (!waited) return;
      }
    }
  }
}
