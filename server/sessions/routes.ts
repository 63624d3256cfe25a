import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { IdParams, Nullable, PageQuery, Strict, Timestamp, Uuid, decodeCursor, encodeCursor, errors } from '../http/schemas';
import type { SessionService } from './service';
import type { SessionRow } from './store';

const SessionResponse = Type.Object({
  id: Uuid,
  session_id: Uuid,
  parent_session_id: Nullable(Uuid),
  user_id: Uuid,
  project_id: Nullable(Uuid),
  title: Nullable(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const Title = Type.String({ maxLength: 500 });

export const sessionView = (s: SessionRow) => ({
  id: s.id,
  session_id: s.id,
  parent_session_id: s.parent_session_id,
  user_id: s.user_id,
  project_id: s.project_id,
  title: s.title,
  created_at: s.created_at.toISOString(),
  updated_at: s.updated_at.toISOString(),
});

const isIdCursor = (v: unknown): v is { id: string } => typeof v === 'object' && v !== null && typeof (v as { id: unknown }).id === 'string';

/** Sessions: your own containers of runs, nested through parent_session_id (their runs: runs/routes.ts). */
export function sessionRoutes(app: HttpServer, sessions: SessionService): void {
  app.post(
    '/v1/sessions',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Start a session (yours; a parent must be one of your sessions)',
        body: Strict({ title: Type.Optional(Title), parent_session_id: Type.Optional(Uuid) }),
        response: { 201: SessionResponse, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const s = await sessions.create(request.principal!, request.body);
      reply.code(201);
      return sessionView(s);
    },
  );

  app.get(
    '/v1/sessions',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Your sessions, newest first',
        querystring: Strict({ ...PageQuery, parent_session_id: Type.Optional(Uuid) }),
        response: { 200: Type.Object({ sessions: Type.Array(SessionResponse), next_cursor: Nullable(Type.String()) }), ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await sessions.list(request.principal!, { parentSessionId: q.parent_session_id, afterId: decodeCursor(q.cursor, isIdCursor)?.id, limit: q.limit });
      const last = page.sessions.at(-1);
      return { sessions: page.sessions.map(sessionView), next_cursor: page.more && last ? encodeCursor({ id: last.id }) : null };
    },
  );

  app.get(
    '/v1/sessions/:id',
    { schema: { tags: ['sessions'], summary: 'One of your sessions', params: IdParams, response: { 200: SessionResponse, ...errors(400, 401, 404) } } },
    async (request) => sessionView(await sessions.get(request.principal!, request.params.id)),
  );

  app.post(
    '/v1/sessions/:id/sessions',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Spawn a sub-session; it answers with its parent_session_id',
        params: IdParams,
        body: Type.Optional(Strict({ title: Type.Optional(Title) })),
        response: { 201: SessionResponse, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const s = await sessions.create(request.principal!, { title: request.body?.title, parent_session_id: request.params.id });
      reply.code(201);
      return sessionView(s);
    },
  );

}
