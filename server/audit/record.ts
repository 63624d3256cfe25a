// Audit rows are written inside the caller's transaction, so the record commits or rolls back
// with the change it describes: every domain imports this one write, never the audit store.
import type { Queryable } from '../db';
import type { RequestContext } from '../http/principal';

export type AuditCategory = 'auth' | 'admin' | 'access';
export type AuditOutcome = 'success' | 'failure' | 'allow' | 'deny';

export interface AuditEntry {
  category: AuditCategory;
  action: string;
  outcome: AuditOutcome;
  actorId?: string | null;
  actorHandle?: string | null;
  resourceType?: string;
  resourceId?: string;
  scopeType?: 'system' | 'project';
  scopeId?: string | null;
  reason?: string;
  /** Never message bodies, passwords, tokens or keys. */
  details?: Record<string, unknown>;
}

/** Appends one audit row, in the caller's transaction when given one. */
export async function appendAudit(q: Queryable, entry: AuditEntry, ctx?: RequestContext): Promise<void> {
  await q.query(
    `INSERT INTO audit_events (category, action, outcome, actor_id, actor_handle, resource_type, resource_id,
       scope_type, scope_id, request_id, ip, user_agent, reason, details)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
    [
      entry.category,
      entry.action,
      entry.outcome,
      entry.actorId ?? null,
      entry.actorHandle ?? null,
      entry.resourceType ?? null,
      entry.resourceId ?? null,
      entry.scopeType ?? null,
      entry.scopeId ?? null,
      ctx?.requestId ?? null,
      ctx?.ip ?? null,
      ctx?.userAgent?.slice(0, 512) ?? null,
      entry.reason ?? null,
      entry.details ? JSON.stringify(entry.details) : null,
    ],
  );
}

