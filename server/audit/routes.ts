import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, PageQuery, Strict, Timestamp, Uuid, errors } from '../http/schemas';
import type { AuditService } from './service';

const Event = Type.Object({}, { additionalProperties: true, description: 'An audit event: event_id, ts, category, action, outcome (decision), actor, resource, request id, client address' });

/** The audit trail, read-only, for admins (and operators). */
export function auditRoutes(app: HttpServer, audit: AuditService): void {
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
      const q = request.query;
      const { events, nextCursor } = await audit.list(request.principal!, {
        category: q.category,
        action: q.action,
        actorId: q.actor_id,
        resourceType: q.resource_type,
        resourceId: q.resource_id,
        outcome: q.outcome,
        since: q.since,
        until: q.until,
        cursor: q.cursor,
        limit: q.limit,
      }, requestContext(request));
      return { events, ...(nextCursor ? { next_cursor: nextCursor } : {}) };
    },
  );

  app.get(
    '/v1/audit/:id',
    { schema: { tags: ['audit'], summary: 'One audit event', params: IdParams, response: { 200: Event, ...errors(400, 401, 403, 404) } } },
    async (request) => audit.get(request.principal!, request.params.id, requestContext(request)),
  );
}
