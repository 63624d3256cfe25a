import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Nullable, PageQuery, Slug, Strict, Timestamp, Uuid, errors } from '../http/schemas';
import type { AdminAct } from '../users/service';
import type { GroupService } from './service';
import type { GroupRow, MembershipRow } from './store';

const DisplayName = Type.String({ minLength: 1, maxLength: 200 });

const Group = Type.Object({
  id: Type.String(),
  slug: Type.String(),
  display_name: Type.String(),
  is_active: Type.Boolean({ description: 'An inactive (deleted) group grants nothing to its members' }),
  member_count: Type.Integer({ description: 'Active memberships' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const Membership = Type.Object({
  group_id: Type.String(),
  user_id: Type.String(),
  handle: Type.String(),
  is_active: Type.Boolean({ description: 'False once the member was removed (kept as a record)' }),
  created_at: Timestamp,
  updated_at: Timestamp,
  updated_by: Nullable(Type.String({ description: 'Who last added or removed the member' })),
});

const groupView = (g: GroupRow) => ({
  id: g.id,
  slug: g.slug,
  display_name: g.display_name,
  is_active: g.is_active,
  member_count: g.member_count,
  created_at: g.created_at.toISOString(),
  updated_at: g.updated_at.toISOString(),
});

const membershipView = (m: MembershipRow) => ({
  group_id: m.group_id,
  user_id: m.user_id,
  handle: m.handle,
  is_active: m.is_active,
  created_at: m.created_at.toISOString(),
  updated_at: m.updated_at.toISOString(),
  updated_by: m.updated_by,
});

const MemberParams = Strict({ id: Uuid, user_id: Uuid });

/** Groups and memberships; every route needs `groups.manage` (the `admin` role). */
export function groupRoutes(app: HttpServer, groups: GroupService): void {
  const admin = (request: FastifyRequest): AdminAct => ({ by: request.principal!, ctx: requestContext(request) });

  app.post(
    '/v1/groups',
    {
      schema: {
        tags: ['groups'],
        summary: 'Create a group',
        body: Strict({ slug: Slug, display_name: DisplayName }),
        response: { 201: Group, ...errors(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const group = await groups.create(admin(request), { slug: request.body.slug, displayName: request.body.display_name });
      reply.code(201);
      return groupView(group);
    },
  );

  app.get(
    '/v1/groups',
    {
      schema: {
        tags: ['groups'],
        summary: 'List groups, ordered by slug',
        querystring: Strict({ ...PageQuery, is_active: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Object({ groups: Type.Array(Group), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      const { limit, cursor, is_active } = request.query;
      const page = await groups.list(admin(request), { isActive: is_active, cursor, limit });
      return { groups: page.groups.map(groupView), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) };
    },
  );

  app.get(
    '/v1/groups/:id',
    { schema: { tags: ['groups'], summary: 'One group', params: IdParams, response: { 200: Group, ...errors(400, 401, 403, 404) } } },
    async (request) => groupView(await groups.get(admin(request), request.params.id)),
  );

  app.patch(
    '/v1/groups/:id',
    {
      schema: {
        tags: ['groups'],
        summary: 'Rename a group, or switch it off and on (an inactive group grants nothing)',
        params: IdParams,
        body: Strict({ display_name: Type.Optional(DisplayName), is_active: Type.Optional(Type.Boolean()) }),
        response: { 200: Group, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      return groupView(await groups.change(admin(request), request.params.id, { displayName: request.body.display_name, isActive: request.body.is_active }));
    },
  );

  app.delete(
    '/v1/groups/:id',
    {
      schema: {
        tags: ['groups'],
        summary: 'Delete a group (soft: it stays listed as inactive and grants nothing)',
        params: IdParams,
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await groups.delete(admin(request), request.params.id);
      reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/groups/:id/members',
    {
      schema: {
        tags: ['groups'],
        summary: "A group's memberships, ordered by handle (removed ones too unless is_active is given)",
        params: IdParams,
        querystring: Strict({ ...PageQuery, is_active: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Object({ members: Type.Array(Membership), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { limit, cursor, is_active } = request.query;
      const page = await groups.members(admin(request), request.params.id, { isActive: is_active, cursor, limit });
      return { members: page.members.map(membershipView), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) };
    },
  );

  app.post(
    '/v1/groups/:id/members',
    {
      schema: {
        tags: ['groups'],
        summary: 'Add a user to a group',
        description: 'Answers 201 when the user became a member (a removed membership is re-activated), 200 when they already were one.',
        params: IdParams,
        body: Strict({ user_id: Uuid }),
        response: { 200: Membership, 201: Membership, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { membership, added } = await groups.addMember(admin(request), request.params.id, request.body.user_id);
      reply.code(added ? 201 : 200);
      return membershipView(membership);
    },
  );

  app.delete(
    '/v1/groups/:id/members/:user_id',
    {
      schema: {
        tags: ['groups'],
        summary: 'Remove a user from a group (their membership stays on record as inactive)',
        params: MemberParams,
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await groups.removeMember(admin(request), request.params.id, request.params.user_id);
      reply.code(204).send(null);
    },
  );
}
