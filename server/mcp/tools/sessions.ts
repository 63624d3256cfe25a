import { Type } from '@sinclair/typebox';
import type { SessionService } from '../../sessions/service';
import { sessionView } from '../../sessions/routes';
import type { ProjectService } from '../../projects/service';
import { projectView } from '../../projects/routes';
import { defineTool, UUID_PATTERN, type ToolDef } from '../catalog';

const Limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 }));

/** Your sessions, as GET /v1/sessions: reading only. */
export function sessionTools(sessions: SessionService): ToolDef[] {
  return [
    defineTool({
      name: 'session.list',
      title: 'List sessions',
      description: 'Your sessions (containers of runs), optionally the children of one; page on with `cursor` (the last session id).',
      input: Type.Object(
        { parent_session_id: Type.Optional(Type.String({ pattern: UUID_PATTERN })), limit: Limit, cursor: Type.Optional(Type.String({ pattern: UUID_PATTERN })) },
        { additionalProperties: false },
      ),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => {
        const page = await sessions.list(caller.principal, { parentSessionId: args.parent_session_id, afterId: args.cursor, limit: args.limit ?? 50 });
        const last = page.sessions.at(-1);
        return { sessions: page.sessions.map(sessionView), next_cursor: page.more && last ? last.id : null };
      },
    }),
    defineTool({
      name: 'session.get',
      title: 'Get a session',
      description: 'One of your sessions.',
      input: Type.Object({ session_id: Type.String({ pattern: UUID_PATTERN }) }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => sessionView(await sessions.get(caller.principal, args.session_id)),
    }),
  ];
}

/** Projects you may read, as GET /v1/projects: reading only. */
export function projectTools(projects: ProjectService): ToolDef[] {
  return [
    defineTool({
      name: 'project.list',
      title: 'List projects',
      description: 'The projects you may read, by slug; `q` filters by slug, name or description. Page on with `cursor` (the last slug).',
      input: Type.Object(
        { q: Type.Optional(Type.String({ maxLength: 200 })), active_only: Type.Optional(Type.Boolean({ default: true })), limit: Limit, cursor: Type.Optional(Type.String({ maxLength: 100 })) },
        { additionalProperties: false },
      ),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller }) => {
        const page = await projects.list(caller.principal, { activeOnly: args.active_only ?? true, text: args.q, afterSlug: args.cursor, limit: args.limit ?? 50 });
        const last = page.projects.at(-1);
        return { projects: page.projects.map(projectView), next_cursor: page.more && last ? last.slug : null };
      },
    }),
    defineTool({
      name: 'project.get',
      title: 'Get a project',
      description: 'One project you may read, by id or slug.',
      input: Type.Object({ project_id: Type.String({ minLength: 1, maxLength: 100, description: 'Project id or slug' }) }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => projectView(await projects.get(caller.principal, args.project_id, ctx)),
    }),
  ];
}
