import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Nullable, Strict, Timestamp, Uuid, errors, iso } from '../http/schemas';
import { NO_STORE } from '../identity/secrets';
import { AGENT_ROLES } from './roles';
import { DEFAULT_AGENT_TOKEN_TTL_SECONDS, MAX_AGENT_TOKEN_TTL_SECONDS, type AgentTokenService } from './service';
import type { AgentTokenRow } from './store';

const Role = Type.Union(
  Object.keys(AGENT_ROLES).map((r) => Type.Literal(r)),
  { description: Object.entries(AGENT_ROLES).map(([r, about]) => `${r}: ${about}`).join('; ') },
);

const AgentToken = Type.Object({
  id: Type.String({ description: 'The agent’s id in access rules and the access audit (`Agent::"<id>"`)' }),
  user_id: Type.String({ description: 'The user the agent acts for' }),
  handle: Type.String(),
  role: Type.String(),
  task_id: Nullable(Type.String()),
  session_id: Nullable(Type.String()),
  project_id: Nullable(Type.String()),
  created_at: Timestamp,
  expires_at: Timestamp,
  revoked_at: Nullable(Timestamp),
});

const view = (t: AgentTokenRow) => ({
  id: t.id,
  user_id: t.user_id,
  handle: t.handle,
  role: t.role,
  task_id: t.task_id,
  session_id: t.session_id,
  project_id: t.project_id,
  created_at: t.created_at.toISOString(),
  expires_at: t.expires_at.toISOString(),
  revoked_at: iso(t.revoked_at),
});

/** Agent-scoped tokens: minted by people for their own agents, accepted only at /mcp. */
export function agentTokenRoutes(app: HttpServer, agents: AgentTokenService): void {
  app.post(
    '/v1/agent-tokens',
    {
      schema: {
        tags: ['agent-tokens'],
        summary: 'Mint a short-lived token for an agent acting for you (the token is shown only in this answer)',
        description:
          'The agent may do what both you and its role may do (the access rules decide both), and only at /mcp: the User API refuses agent tokens. ' +
          'Bound to a task (and its project and session) when task_id is given. There is no user field: everyone, admins too, mints for themselves.',
        body: Strict({
          role: Role,
          task_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'A task of yours, by id or name' })),
          session_id: Type.Optional(Uuid),
          project_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'A project you can read, by id or slug' })),
          ttl_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_AGENT_TOKEN_TTL_SECONDS, default: DEFAULT_AGENT_TOKEN_TTL_SECONDS })),
        }),
        response: { 201: Type.Intersect([AgentToken, Type.Object({ token: Type.String() })]), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const minted = await agents.create(request.principal!, { role: b.role, taskId: b.task_id, sessionId: b.session_id, projectId: b.project_id, ttlSeconds: b.ttl_seconds }, requestContext(request));
      reply.code(201).headers(NO_STORE);
      return { ...view(minted), token: minted.token };
    },
  );

  app.get(
    '/v1/agent-tokens',
    {
      schema: {
        tags: ['agent-tokens'],
        summary: 'List agent tokens (never the tokens themselves): yours, or for admins another user’s or everyone’s',
        querystring: Strict({
          user_id: Type.Optional(Uuid),
          all: Type.Optional(Type.Boolean({ description: 'Every user’s (admins)' })),
          include_inactive: Type.Optional(Type.Boolean({ description: 'Expired and revoked ones too' })),
          limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
        }),
        response: { 200: Type.Object({ agent_tokens: Type.Array(AgentToken) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      const q = request.query;
      const rows = await agents.list(request.principal!, { userId: q.user_id, all: q.all, includeInactive: q.include_inactive, limit: q.limit }, requestContext(request));
      return { agent_tokens: rows.map(view) };
    },
  );

  app.delete(
    '/v1/agent-tokens/:id',
    { schema: { tags: ['agent-tokens'], summary: 'Revoke an agent token at once: yours, or any for admins', params: IdParams, response: { 204: Type.Null(), ...errors(400, 401, 404) } } },
    async (request, reply) => {
      await agents.revoke(request.principal!, request.params.id, requestContext(request));
      reply.code(204).send(null);
    },
  );
}
