import type { Queryable } from '../db';
import { Conditions } from '../db/sql';
import type { AuditCategory, AuditOutcome } from './record';

export interface AuditEvent {
  event_id: string;
  seq: number;
  ts: string;
  category: AuditCategory;
  action: string;
  outcome: AuditOutcome;
  /** CLI contract name for the outcome of an access decision. */
  decision: AuditOutcome;
  actor_id: string | null;
  actor_handle: string | null;
  resource_type: string | null;
  resource_id: string | null;
  scope_type: string | null;
  scope_id: string | null;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  reason: string | null;
  details: Record<string, unknown> | null;
}

export interface AuditFilter {
  category?: AuditCategory;
  action?: string;
  actorId?: string;
  resourceType?: string;
  resourceId?: string;
  outcome?: AuditOutcome;
  since?: string;
  until?: string;
  /** Only events older than this sequence number (the cursor). */
  beforeSeq?: number;
  limit: number;
}

function toEvent(r: Record<string, unknown>): AuditEvent {
  return {
    event_id: r.id as string,
    seq: Number(r.seq),
    ts: (r.ts as Date).toISOString(),
    category: r.category as AuditCategory,
    action: r.action as string,
    outcome: r.outcome as AuditOutcome,
    decision: r.outcome as AuditOutcome,
    actor_id: (r.actor_id as string | null) ?? null,
    actor_handle: (r.actor_handle as string | null) ?? null,
    resource_type: (r.resource_type as string | null) ?? null,
    resource_id: (r.resource_id as string | null) ?? null,
    scope_type: (r.scope_type as string | null) ?? null,
    scope_id: (r.scope_id as string | null) ?? null,
    request_id: (r.request_id as string | null) ?? null,
    ip: (r.ip as string | null) ?? null,
    user_agent: (r.user_agent as string | null) ?? null,
    reason: (r.reason as string | null) ?? null,
    details: (r.details as Record<string, unknown> | null) ?? null,
  };
}

/** Newest first; one extra row tells whether another page exists. */
export async function listAudit(q: Queryable, f: AuditFilter): Promise<{ events: AuditEvent[]; more: boolean }> {
  const c = new Conditions();
  if (f.category) c.add('category = ?', f.category);
  if (f.action) c.add('action = ?', f.action);
  if (f.actorId) c.add('actor_id = ?', f.actorId);
  if (f.resourceType) c.add('resource_type = ?', f.resourceType);
  if (f.resourceId) c.add('resource_id = ?', f.resourceId);
  if (f.outcome) c.add('outcome = ?', f.outcome);
  if (f.since) c.add('ts >= ?', f.since);
  if (f.until) c.add('ts < ?', f.until);
  if (f.beforeSeq !== undefined) c.add('seq < ?', f.beforeSeq);
  const limit = c.param(f.limit + 1);
  const rows = await q.query(`SELECT * FROM audit_events ${c.where()} ORDER BY seq DESC LIMIT ${limit}`, c.params);
  return { events: rows.slice(0, f.limit).map(toEvent), more: rows.length > f.limit };
}

export async function getAuditEvent(q: Queryable, id: string): Promise<AuditEvent | null> {
  const rows = await q.query('SELECT * FROM audit_events WHERE id = $1', [id]);
  return rows[0] ? toEvent(rows[0]) : null;
}
