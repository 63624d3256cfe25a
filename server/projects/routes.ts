import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { Nullable, PageQuery, Slug, Strict, Timestamp, Uuid, decodeCursor, encodeCursor, errors } from '../http/schemas';
import type { ProjectBindingRow } from '../rbac/bindings';
import type { ProjectService } from './service';
import type { ProjectRow } from './store';

const Project = Type.Object({
  project_id: Uuid,
  id: Uuid,
  slug: Type.String(),
  display_name: Type.String(),
  description: Nullable(Type.String()),
  is_active: Type.Boolean(),
  is_default: Type.Boolean({ description: 'The default project of a user: work created without a project goes there' }),
  owner_user_id: Type.Optional(Uuid),
  created_at: Timestamp,
  updated_at: Timestamp,
  updated_by: Nullable(Uuid),
});

const ProjectBinding = Type.Object({
  binding_id: Uuid,
  subject_type: Type.Union([Type.Literal('user'), Type.Literal('group')]),
  subject_id: Uuid,
  subject_name: Nullable(Type.String({ description: 'Handle of the user or slug of the group' })),
  role: Type.String(),
  is_active: Type.Boolean(),
  updated_at: Timestamp,
});

/** A project id or its slug. */
const RefParams = Strict({ id: Type.String({ minLength: 1, maxLength: 100, description: 'Project id or slug' }) });

const DisplayName = Type.String({ minLength: 1, maxLength: 200 });
const Description = Type.String({ maxLength: 4000 });

export const projectView = (p: ProjectRow) => ({
  project_id: p.id,
  id: p.id,
  slug: p.slug,
  display_name: p.display_name,
  description: p.description,
  is_active: p.is_active,
  is_default: p.default_for_user_id !== null,
  ...(p.default_for_user_id ? { owner_user_id: p.default_for_user_id } : {}),
  created_at: p.created_at.toISOString(),
  updated_at: p.updated_at.toISOString(),
  updated_by: p.updated_by,
});

const bindingView = (b: ProjectBindingRow) => ({
  binding_id: b.id,
  subject_type: b.subject_type,
  subject_id: b.subject_id,
  subject_name: b.subject_name,
  role: b.role,
  is_active: b.is_active,
  updated_at: b.updated_at.toISOString(),
});

const isSlugCursor = (v: unknown): v is { slug: string } => typeof v === 'object' && v !== null && typeof (v as { slug: unknown }).slug === 'string';

/** Projects: list, create, read, change, soft-delete, and who has access to one. */
export function projectRoutes(app: HttpServer, projects: ProjectService): void {

  app.get(
    '/v1/projects',
    {
      schema: {
        tags: ['projects'],
        summary: 'List the projects you can read (your default project and those a role binding gives you)',
        querystring: Strict({
          ...PageQuery,
          active_only: Type.Boolean({ default: true, description: 'Hide deleted (inactive) projects' }),
          q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Case-insensitive text in slug, display name or description' })),
        }),
        response: { 200: Type.Object({ projects: Type.Array(Project), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401) },
      },
    },
    async (request) => {
      const q = request.query;
      const after = decodeCursor(q.cursor, isSlugCursor);
      const page = await projects.list(request.principal!, { activeOnly: q.active_only, text: q.q, afterSlug: after?.slug, limit: q.limit });
      const last = page.projects.at(-1);
      return { projects: page.projects.map(projectView), ...(page.more && last ? { next_cursor: encodeCursor({ slug: last.slug }) } : {}) };
    },
  );

  app.post(
    '/v1/projects',
    {
      schema: {
        tags: ['projects'],
        summary: 'Create a project; you become its owner',
        body: Strict({ slug: Slug, display_name: DisplayName, description: Type.Optional(Description) }),
        response: { 201: Project, ...errors(400, 401, 409) },
      },
    },
    async (request, reply) => {
      const project = await projects.create(request.principal!, request.body, requestContext(request));
      reply.code(201);
      return projectView(project);
    },
  );

  app.get(
    '/v1/projects/:id',
    { schema: { tags: ['projects'], summary: 'One project, by id or slug', params: RefParams, response: { 200: Project, ...errors(400, 401, 404) } } },
    async (request) => projectView(await projects.get(request.principal!, request.params.id, requestContext(request))),
  );

  app.patch(
    '/v1/projects/:id',
    {
      schema: {
        tags: ['projects'],
        summary: 'Change a project (owners and admins); an empty description clears it',
        params: RefParams,
        body: Strict({ display_name: Type.Optional(DisplayName), description: Type.Optional(Description), is_active: Type.Optional(Type.Boolean()) }),
        response: { 200: Project, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => projectView(await projects.update(request.principal!, request.params.id, request.body, requestContext(request))),
  );

  app.delete(
    '/v1/projects/:id',
    {
      schema: {
        tags: ['projects'],
        summary: 'Delete a project (soft: it becomes inactive); default projects cannot be deleted',
        params: RefParams,
        response: { 200: Type.Object({ project_id: Uuid, deleted: Type.Literal(true) }), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const project = await projects.delete(request.principal!, request.params.id, requestContext(request));
      return { project_id: project.id, deleted: true as const };
    },
  );

  app.get(
    '/v1/projects/:id/rbac',
    {
      schema: {
        tags: ['projects', 'rbac'],
        summary: 'Who has which role on a project',
        params: RefParams,
        querystring: Strict({ include_inactive: Type.Boolean({ default: false, description: 'Also list revoked bindings' }) }),
        response: { 200: Type.Object({ bindings: Type.Array(ProjectBinding) }), ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const bindings = await projects.bindings(request.principal!, request.params.id, !request.query.include_inactive, requestContext(request));
      return { bindings: bindings.map(bindingView) };
    },
  );
}
