import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { Handle, IdParams, Nullable, PageQuery, Password, Strict, Timestamp, errors } from '../http/schemas';
import type { AdminAct, UserService } from './service';
import type { UserView } from './store';

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

const Me = Type.Object({
  id: Type.String(),
  handle: Type.String(),
  email: Nullable(Type.String()),
  display_name: Nullable(Type.String()),
  is_active: Type.Boolean(),
  roles: Type.Array(Type.String(), { description: 'System-scope roles' }),
  group_ids: Type.Array(Type.String()),
  default_project_id: Nullable(Type.String()),
  auth_method: Type.Union([Type.Literal('session'), Type.Literal('api_key')]),
});

/** Your own account, and admin user management (every /v1/users/:id route needs `users.manage`, the `admin` role). */
export function userRoutes(app: HttpServer, users: UserService): void {
  const admin = (request: FastifyRequest): AdminAct => ({ by: request.principal!, ctx: requestContext(request) });

  app.get(
    '/v1/users/me',
    { schema: { tags: ['users'], summary: 'Who am I', response: { 200: Me, ...errors(401) } } },
    async (request) => {
      const p = request.principal!;
      const me = await users.me(p);
      return {
        id: me.user.id,
        handle: me.user.handle,
        email: me.user.email,
        display_name: me.user.display_name,
        is_active: me.user.is_active,
        roles: me.roles,
        group_ids: me.groupIds,
        default_project_id: me.defaultProjectId,
        auth_method: p.via === 'api_key' ? ('api_key' as const) : ('session' as const),
      };
    },
  );

  app.post(
    '/v1/users/me/password',
    {
      schema: {
        tags: ['users'],
        summary: 'Change your password (your other sessions are signed out)',
        description: 'Only with a signed-in session: an API key cannot change the password (403).',
        body: Strict({ current_password: Type.String({ minLength: 1, maxLength: 1024 }), new_password: Password }),
        response: { 204: Type.Null(), ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      await users.setPassword({ kind: 'own', by: request.principal!, ctx: requestContext(request), currentPassword: request.body.current_password }, request.body.new_password);
      reply.code(204).send(null);
    },
  );

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
      const { handle, password, email, display_name } = request.body;
      const user = await users.create(admin(request), { handle, password, email, displayName: display_name });
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
      const { limit, cursor, is_active } = request.query;
      const page = await users.list(admin(request), { isActive: is_active, cursor, limit });
      return { users: page.users.map(view), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) };
    },
  );

  app.get(
    '/v1/users/:id',
    { schema: { tags: ['users'], summary: 'One user', params: IdParams, response: { 200: User, ...errors(400, 401, 403, 404) } } },
    async (request) => view(await users.get(admin(request), request.params.id)),
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
      const { email, display_name } = request.body;
      return view(await users.update(admin(request), request.params.id, { email, displayName: display_name }));
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
    async (request) => view(await users.disable(admin(request), request.params.id)),
  );

  app.post(
    '/v1/users/:id/enable',
    { schema: { tags: ['users'], summary: 'Enable a disabled user (their old sessions and API keys stay revoked)', params: IdParams, response: { 200: User, ...errors(400, 401, 403, 404) } } },
    async (request) => view(await users.enable(admin(request), request.params.id)),
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
      await users.setPassword({ kind: 'reset', ...admin(request), userId: request.params.id }, request.body.new_password);
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
      await users.revokeSessions(admin(request), request.params.id);
      reply.code(204).send(null);
    },
  );
}
