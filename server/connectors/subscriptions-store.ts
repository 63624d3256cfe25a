import type { Queryable } from '../db';

/** The SQL of event subscriptions (migrations/0014_connector_subscriptions.sql). */

export interface SubscriptionRow {
  id: string;
  instance_id: string;
  owner_user_id: string;
  events: string[];
  operation: string;
  params: Record<string, unknown>;
  created_at: Date;
}

/** A subscription an event goes to, with what delivery needs to act as its owner. */
export interface DueSubscription extends SubscriptionRow {
  owner_handle: string;
  owner_active: boolean;
}

const COLUMNS = 's.id, s.instance_id, s.owner_user_id, s.events, s.operation, s.params, s.created_at';

export async function insertSubscription(
  q: Queryable,
  s: { instanceId: string; ownerUserId: string; events: string[]; operation: string; params: Record<string, unknown> },
): Promise<SubscriptionRow> {
  const rows = await q.query<SubscriptionRow>(
    `INSERT INTO connector_subscriptions AS s (instance_id, owner_user_id, events, operation, params) VALUES ($1, $2, $3::jsonb, $4, $5::jsonb)
     RETURNING ${COLUMNS}`,
    [s.instanceId, s.ownerUserId, JSON.stringify(s.events), s.operation, JSON.stringify(s.params)],
  );
  return rows[0]!;
}

/** An instance's subscriptions, oldest first; `ownerUserId` narrows them to one user's. */
export async function listSubscriptions(q: Queryable, instanceId: string, ownerUserId: string | null): Promise<SubscriptionRow[]> {
  return q.query<SubscriptionRow>(
    `SELECT ${COLUMNS} FROM connector_subscriptions s WHERE s.instance_id = $1 AND ($2::uuid IS NULL OR s.owner_user_id = $2) ORDER BY s.created_at, s.id`,
    [instanceId, ownerUserId],
  );
}

export async function findSubscription(q: Queryable, instanceId: string, id: string): Promise<SubscriptionRow | null> {
  const rows = await q.query<SubscriptionRow>(`SELECT ${COLUMNS} FROM connector_subscriptions s WHERE s.instance_id = $1 AND s.id = $2`, [instanceId, id]);
  return rows[0] ?? null;
}

export async function deleteSubscription(q: Queryable, id: string): Promise<void> {
  await q.query('DELETE FROM connector_subscriptions WHERE id = $1', [id]);
}

/**
 * The subscriptions to `event` of instances that still exist; `ownerUserId` narrows them to one
 * user's (a task's events go to its creator's subscriptions only).
 */
export async function dueSubscriptions(q: Queryable, event: string, ownerUserId: string | null): Promise<DueSubscription[]> {
  return q.query<DueSubscription>(
    `SELECT ${COLUMNS}, u.handle AS owner_handle, u.is_active AS owner_active
     FROM connector_subscriptions s
     JOIN connector_instances i ON i.id = s.instance_id AND i.deleted_at IS NULL
     JOIN users u ON u.id = s.owner_user_id
     WHERE s.events @> $1::jsonb AND ($2::uuid IS NULL OR s.owner_user_id = $2)
     ORDER BY s.created_at, s.id`,
    [JSON.stringify([event]), ownerUserId],
  );
}

/** What a task's event message says of it. */
export interface TaskFacts {
  id: string;
  name: string;
  created_by: string;
  status: string;
  failure_reason: string | null;
  project_id: string;
}

export async function taskFacts(q: Queryable, taskId: string): Promise<TaskFacts | null> {
  const rows = await q.query<TaskFacts>('SELECT id, name, created_by, status, failure_reason, project_id FROM tasks WHERE id = $1', [taskId]);
  return rows[0] ?? null;
}

/** What a node's event message says of it. */
export interface NodeFacts {
  id: string;
  node_slug: string;
  display_name: string | null;
  last_seen_at: Date | null;
}

export async function nodeFacts(q: Queryable, nodeIds: string[]): Promise<NodeFacts[]> {
  if (nodeIds.length === 0) return [];
  return q.query<NodeFacts>('SELECT id, node_slug, display_name, last_seen_at FROM nodes WHERE id = ANY($1::uuid[]) ORDER BY node_slug', [nodeIds]);
}
