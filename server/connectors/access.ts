import type { Queryable } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem, notFound } from '../http/problem';
import type { ConnectorRef } from '../policy/request';
import type { Authorizer } from '../rbac/service';
import type { ConnectorPolicy } from './policy';
import { findInstance, isActiveGroupMember, type InstanceRow } from './store';

/** Who acts, and the request behind it (for audit). */
export interface ConnectorAct {
  by: Principal;
  ctx: RequestContext;
}

/** The RBAC action that lets an admin see and manage every instance (the `admin` role's `*`). */
export const ADMIN_ACTION = 'connectors.admin';

/** A problem carrying the failure class as its `code`, as the executor and history name it. */
export const connectorProblem = (status: number, code: string, detail: string, headers: Record<string, string> = {}, ext: Record<string, unknown> = {}) =>
  new HttpProblem(status, detail, { code, ...ext }, headers);

export function refOf(i: InstanceRow): ConnectorRef {
  return {
    id: i.id,
    type: i.type,
    ...(i.owner_user_id ? { ownerUser: i.owner_user_id } : {}),
    ...(i.owner_group_id ? { ownerGroup: i.owner_group_id } : {}),
    ...(i.project_id ? { project: i.project_id } : {}),
  };
}

/** Whether `by` owns the instance, directly or as an active member of its owning group. */
export async function isOwner(q: Queryable, by: Principal, i: InstanceRow): Promise<boolean> {
  if (i.owner_user_id === by.userId) return true;
  return i.owner_group_id !== null && (await isActiveGroupMember(q, by.userId, i.owner_group_id));
}

/**
 * The instance if the caller may see it (owner, owning-group member, or admin), else 404: an
 * instance one may not see is indistinguishable from one that does not exist.
 */
export async function visibleInstance(q: Queryable, authz: Authorizer, by: Principal, id: string): Promise<InstanceRow> {
  return visibleOrNotFound(q, authz, by, await findInstance(q, id));
}

/** visibleInstance for an instance read already (or null when there is none). */
export async function visibleOrNotFound(q: Queryable, authz: Authorizer, by: Principal, instance: InstanceRow | null): Promise<InstanceRow> {
  if (!instance) throw notFound('Connector');
  if (await isOwner(q, by, instance)) return instance;
  if (await authz.can(by, ADMIN_ACTION)) return instance;
  throw notFound('Connector');
}

/**
 * Holds the instance's row for the transaction, after the caller's right to see it was checked
 * outside: inside a transaction only `tx` may be used (PGlite has one connection), and the
 * authorizer reads through the pool.
 */
export async function lockInstance(tx: Queryable, id: string): Promise<InstanceRow> {
  const instance = await findInstance(tx, id, { lock: true });
  if (!instance) throw notFound('Connector');
  return instance;
}

/**
 * Management of a visible instance: its owning user may change it; anyone else (group members,
 * admins) needs the policy's `connector.manage`. 403 policy_denied otherwise.
 */
export async function requireManage(policy: ConnectorPolicy, act: ConnectorAct, instance: InstanceRow): Promise<void> {
  if (instance.owner_user_id === act.by.userId) return;
  const decision = await policy.decide(act.by, { action: 'connector.manage', connector: refOf(instance) }, act.ctx);
  if (!decision.allowed) throw connectorProblem(403, 'policy_denied', 'You are not allowed to manage this connector');
}

/** Management actions go to the normal audit trail; `details` never holds a secret. */
export async function auditConnector(tx: Queryable, act: ConnectorAct, action: string, instance: { id: string; project_id: string | null }, details?: Record<string, unknown>): Promise<void> {
  await appendAudit(
    tx,
    {
      category: 'admin',
      action,
      outcome: 'success',
      actorId: act.by.userId,
      actorHandle: act.by.handle,
      resourceType: 'connector',
      resourceId: instance.id,
      scopeType: instance.project_id ? 'project' : 'system',
      scopeId: instance.project_id,
      details,
    },
    act.ctx,
  );
}
