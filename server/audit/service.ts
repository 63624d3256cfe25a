import type { Db } from '../db';
import type { Principal, RequestContext } from '../http/principal';
import { notFound } from '../http/problem';
import { decodeCursor, encodeCursor } from '../http/schemas';
import type { Authorizer } from '../rbac/service';
import { getAuditEvent, listAudit, type AuditEvent, type AuditFilter } from './store';

/** Reading the audit trail: `audit.read` (admins and operators). Writes go through audit/record.ts. */
export class AuditService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
  ) {}

  /** Newest first; the cursor is checked after the caller's right to read. */
  async list(principal: Principal, f: Omit<AuditFilter, 'beforeSeq'> & { cursor?: string }, ctx: RequestContext): Promise<{ events: AuditEvent[]; nextCursor?: string }> {
    await this.authz.require(principal, 'audit.read', ctx, { resourceType: 'audit' });
    const { cursor, ...filter } = f;
    const before = decodeCursor(cursor, (v): v is { seq: number } => typeof v === 'object' && v !== null && Number.isInteger((v as { seq: unknown }).seq));
    const { events, more } = await listAudit(this.db, { ...filter, beforeSeq: before?.seq });
    const last = events.at(-1);
    return { events, ...(more && last ? { nextCursor: encodeCursor({ seq: last.seq }) } : {}) };
  }

  async get(principal: Principal, id: string, ctx: RequestContext): Promise<AuditEvent> {
    await this.authz.require(principal, 'audit.read', ctx, { resourceType: 'audit' });
    const event = await getAuditEvent(this.db, id);
    if (!event) throw notFound('Audit event');
    return event;
  }
}
