import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Nullable, PageQuery, Strict, Timestamp, Uuid, decodeCursor, encodeCursor, errors } from '../http/schemas';
import type { RoleBindingService } from './service';
import type { RoleBindingRow } from './store';

const SubjectType = Type.Union([Type.Literal('user'), Type.Literal('group')]);
const ScopeType = Type.Union([Type.Literal('system'), Type.Literal('project')]);

const Role = Type.Object({
  id: Uuid,
  name: Type.String(),
  description: Type.String(),
  scope_type: ScopeType,
  permissions: Type.Array(Type.String(), { description: 'Actions the role grants; `*` grants every action' }),
});

const Binding = Type.Object({
  id: Uuid,
  subject_type: SubjectType,
  subject_id: Uuid,
  role: Type.String(),
  role_id: Uuid,
  scope_type: ScopeType,
  scope_id: Nullable(Uuid),
  is_active: Type.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
  updated_by: Nullable(Uuid),
});

const bindingView = (b: RoleBindingRow) => ({
  id: b.id,
  subject_type: b.subject_type,
  subject_id: b.subject_id,
  role: b.role,
  role_id: b.role_id,
  scope_type: b.scope_type,
  scope_id: b.scope_id,
  is_active: b.is_active,
  created_at: b.created_at.toISOString(),
  updated_at: b.updated_at.toISOString(),
  updated_by: b.updated_by,
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isIdCursor = (v: unknown): v is { id: string } => typeof v === 'object' && v !== null && typeof (v as { id: unknown }).id === 'string' && UUID.test((v as { id: string }).id);

/** Roles and role bindings. */
export function rbacRoutes(app: HttpServer, bindings: RoleBindingService): void {

  app.get(
    '/v1/roles',
    { schema: { tags: ['rbac'], summary: 'The roles and the actions each grants', response: { 200: Type.Object({ roles: Type.Array(Role) }), ...errors(401) } } },
    async () => ({ roles: await bindings.roles() }),
  );

  app.get(
    '/v1/role-bindings',
    {
      schema: {
        tags: ['rbac'],
        summary: 'Search role bindings at every scope (admins)',
        querystring: Strict({
          ...PageQuery,
          subject_type: Type.Optional(SubjectType),
          subject_id: Type.Optional(Uuid),
          scope_type: Type.Optional(ScopeType),
          scope_id: Type.Optional(Uuid),
          role: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Role name or id' })),
          active_only: Type.Boolean({ default: true, description: 'Hide revoked bindings' }),
        }),
        response: { 200: Type.Object({ role_bindings: Type.Array(Binding), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      const q = request.query;
      const after = decodeCursor(q.cursor, isIdCursor);
      const page = await bindings.search(
        request.principal!,
        { subjectType: q.subject_type, subjectId: q.subject_id, scopeType: q.scope_type, scopeId: q.scope_id, role: q.role, activeOnly: q.active_only, afterId: after?.id, limit: q.limit },
        requestContext(request),
      );
      const last = page.bindings.at(-1);
      return { role_bindings: page.bindings.map(bindingView), ...(page.more && last ? { next_cursor: encodeCursor({ id: last.id }) } : {}) };
    },
  );

  app.post(
    '/v1/role-bindings',
    {
      schema: {
        tags: ['rbac'],
        summary: 'Grant a role to a user or group at system scope (admins) or on a project (its owners and admins)',
        description: 'Granting a binding that already exists and is active answers 200 with it.',
        body: Strict({
          subject_type: SubjectType,
          subject_id: Uuid,
          role: Type.String({ minLength: 1, maxLength: 100, description: 'Role name or id' }),
          scope_type: ScopeType,
          scope_id: Type.Optional(Uuid),
        }),
        response: { 200: Binding, 201: Binding, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { binding, created } = await bindings.grant(request.principal!, request.body, requestContext(request));
      reply.code(created ? 201 : 200);
      return bindingView(binding);
    },
  );

  app.delete(
    '/v1/role-bindings/:id',
    {
      schema: {
        tags: ['rbac'],
        summary: 'Revoke a role binding (soft); a project keeps at least one owner and the installation one admin',
        params: IdParams,
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      await bindings.revoke(request.principal!, request.params.id, requestContext(request));
      reply.code(204).send(null);
    },
  );
}
