import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { notFound } from '../http/problem';
import { IdParams, PageQuery, Strict, Timestamp, Uuid, decodeCursor, encodeCursor, errors } from '../http/schemas';
import type { RouteDeps } from '../routes';
import { getAuditEvent, listAudit } from './store';

const Event = Type.Object({}, { additionalProperties: true, description: 'An audit event: event_id, ts, category, action, outcome (decision), actor, resource, request id, client address' });

/** The audit trail, read-only, for admins (and operators). */
export function auditRoutes(app: HttpServer, { db, authz }: RouteDeps): void {
  app.get(
    '/v1/audit',
    {
      schema: {
        tags: ['audit'],
        summary: 'Search the audit trail, newest first',
        querystring: Strict({
          ...PageQuery,
          category: Type.Optional(Type.Union([Type.Literal('auth'), Type.Literal('admin'), Type.Literal('access')])),
          action: Type.Optional(Type.String({ maxLength: 100 })),
          actor_id: Type.Optional(Uuid),
          resource_type: Type.Optional(Type.String({ maxLength: 100 })),
          resource_id: Type.Optional(Type.String({ maxLength: 200 })),
          outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('allow'), Type.Literal('deny')])),
          since: Type.Optional(Timestamp),
          until: Type.Optional(Timestamp),
        }),
        response: { 200: Type.Object({ events: Type.Array(Event), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      await authz.require(request.principal!, 'audit.read', requestContext(request), { resourceType: 'audit' });
      const q = request.query;
      const before = decodeCursor(q.cursor, (v): v is { seq: number } => typeof v === 'object' && v !== null && Number.isInteger((v as { seq: unknown }).seq));
      const { events, more } = await listAudit(db, {
        category: q.category,
        action: q.action,
        actorId: q.actor_id,
        resourceType: q.resource_type,
        resourceId: q.resource_id,
        outcome: q.outcome,
        since: q.since,
        until: q.until,
        beforeSeq: before?.seq,
        limit: q.limit,
      });
      const last = events.at(-1);
      return { events, ...(more && last ? { next_cursor: encodeCursor({ seq: last.seq }) } : {}) };
    },
  );

  app.get(
    '/v1/audit/:id',
    { schema: { tags: ['audit'], summary: 'One audit event', params: IdParams, response: { 200: Event, ...errors(400, 401, 403, 404) } } },
    async (request) => {
      await authz.require(request.principal!, 'audit.read', requestContext(request), { resourceType: 'audit' });
      const event = await getAuditEvent(db, request.params.id);
      if (!event) throw notFound('Audit event');
      return event;
    },
  );
}
