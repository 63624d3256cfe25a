import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { notFound } from '../http/problem';
import { Handle, IdParams, Nullable, PageQuery, Password, Strict, Timestamp, decodeCursor, encodeCursor, errors } from '../http/schemas';
import type { RouteDeps } from '../routes';
import { createUser, disableUser, enableUser, resetPassword, revokeSessions, updateUser, type AdminAct } from './service';
import { findUserView, listUserViews, type UserView } from './store';
import { removeFirstRunPasswordFile } from './first-run-password';
import { dataFiles } from '../config/config';

const Email = Type.String({ format: 'email', maxLength: 254 });
const DisplayName = Type.String({ minLength: 1, maxLength: 200 });

const User = Type.Object({
  id: Type.String(),
  handle: Type.String(),
  email: Nullable(Type.String()),
  display_name: Nullable(Type.String()),
  is_active: Type.Boolean(),
  is_system: Type.Boolean({ description: 'The reserved `system` user: attributes actions nobody typed, never signs in' }),
  default_project_id: Nullable(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const view = (u: UserView) => ({
  id: u.id,
  handle: u.handle,
  email: u.email,
  display_name: u.display_name,
  is_active: u.is_active,
  is_system: u.is_system,
  default_project_id: u.default_project_id,
  created_at: u.created_at.toISOString(),
  updated_at: u.updated_at.toISOString(),
});

const isHandleCursor = (v: unknown): v is { handle: string } => typeof v === 'object' && v !== null && typeof (v as { handle: unknown }).handle === 'string';

/** Admin user management: every route needs `users.manage` (the `admin` role). */
export function userRoutes(app: HttpServer, { db, authz, config }: RouteDeps): void {
  const admin = async (request: FastifyRequest, resourceId?: string): Promise<AdminAct> => {
    const ctx = requestContext(request);
    await authz.require(request.principal!, 'users.manage', ctx, { resourceType: 'user', resourceId });
    return { by: request.principal!, ctx };
  };

  app.post(
    '/v1/users',
    {
      schema: {
        tags: ['users'],
        summary: 'Create a user (with a default project they own)',
        description: 'The handle `system` is reserved (400). A taken handle or email answers 409.',
        body: Strict({ handle: Handle, password: Password, email: Type.Optional(Nullable(Email)), display_name: Type.Optional(Nullable(DisplayName)) }),
        response: { 201: User, ...errors(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const act = await admin(request);
      const { handle, password, email, display_name } = request.body;
      const user = await createUser(db, act, { handle, password, email, displayName: display_name });
      reply.code(201);
      return view(user);
    },
  );

  app.get(
    '/v1/users',
    {
      schema: {
        tags: ['users'],
        summary: 'List users, ordered by handle',
        querystring: Strict({ ...PageQuery, is_active: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Object({ users: Type.Array(User), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      await admin(request);
      const { limit, cursor, is_active } = request.query;
      const after = decodeCursor(cursor, isHandleCursor);
      // One extra row tells whether another page exists.
      const rows = await listUserViews(db, { isActive: is_active, afterHandle: after?.handle, limit: limit + 1 });
      const users = rows.slice(0, limit);
      const last = users.at(-1);
      return { users: users.map(view), ...(rows.length > limit && last ? { next_cursor: encodeCursor({ handle: last.handle }) } : {}) };
    },
  );

  app.get(
    '/v1/users/:id',
    { schema: { tags: ['users'], summary: 'One user', params: IdParams, response: { 200: User, ...errors(400, 401, 403, 404) } } },
    async (request) => {
      await admin(request, request.params.id);
      const user = await findUserView(db, request.params.id);
      if (!user) throw notFound('User');
      return view(user);
    },
  );

  app.patch(
    '/v1/users/:id',
    {
      schema: {
        tags: ['users'],
        summary: "Change a user's email or display name (null clears; the handle never changes)",
        params: IdParams,
        body: Strict({ email: Type.Optional(Nullable(Email)), display_name: Type.Optional(Nullable(DisplayName)) }),
        response: { 200: User, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const act = await admin(request, request.params.id);
      const { email, display_name } = request.body;
      return view(await updateUser(db, act, request.params.id, { email, displayName: display_name }));
    },
  );

  app.post(
    '/v1/users/:id/disable',
    {
      schema: {
        tags: ['users'],
        summary: 'Disable a user: they cannot sign in, and their sessions and API keys end at once, for good',
        description: 'The system user and your own account cannot be disabled (409).',
        params: IdParams,
        response: { 200: User, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => view(await disableUser(db, await admin(request, request.params.id), request.params.id)),
  );

  app.post(
    '/v1/users/:id/enable',
    { schema: { tags: ['users'], summary: 'Enable a disabled user (their old sessions and API keys stay revoked)', params: IdParams, response: { 200: User, ...errors(400, 401, 403, 404) } } },
    async (request) => view(await enableUser(db, await admin(request, request.params.id), request.params.id)),
  );

  app.post(
    '/v1/users/:id/reset_password',
    {
      schema: {
        tags: ['users'],
        summary: "Set a user's password; all their sessions end",
        description: 'Not for the system user, which never signs in (409).',
        params: IdParams,
        body: Strict({ new_password: Password }),
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      if (await resetPassword(db, await admin(request, request.params.id), request.params.id, request.body.new_password)) {
        await removeFirstRunPasswordFile(dataFiles.initialAdminPassword(config.dataDir));
      }
      reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/users/:id/revoke_sessions',
    {
      schema: {
        tags: ['users'],
        summary: 'End every session of a user (their API keys stay valid)',
        params: IdParams,
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await revokeSessions(db, await admin(request, request.params.id), request.params.id);
      reply.code(204).send(null);
    },
  );
}
