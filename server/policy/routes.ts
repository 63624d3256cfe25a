import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { Nullable, PageQuery, Strict, Timestamp, Uuid, errors } from '../http/schemas';
import type { AdminAct } from '../users/service';
import type { PolicyResource } from './request';
import { ACTIONS, type PolicyAction } from './schema';
import type { PolicyService } from './service';
import type { AccessEntry, RuleRow } from './store';

const RuleId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$', description: 'A rule id: a uuid, or the readable id of a rule shipped with CyNode' });
const RuleParams = Strict({ id: RuleId });
const Name = Type.String({ minLength: 1, maxLength: 200 });
const Description = Type.String({ maxLength: 2000 });
const RuleText = Type.String({ minLength: 1, maxLength: 20_000, description: 'One Cedar policy: `permit (…) when {…};` or `forbid (…);`' });
const Action = Type.Union(
  Object.keys(ACTIONS).map((a) => Type.Literal(a)),
  { description: Object.entries(ACTIONS).map(([a, d]) => `${a}: ${d.about}`).join('; ') },
);

const Rule = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  text: Type.String({ description: 'The Cedar policy' }),
  enabled: Type.Boolean({ description: 'A disabled rule decides nothing' }),
  is_default: Type.Boolean({ description: 'Shipped with CyNode; may be changed or deleted like any other' }),
  version: Type.Integer({ description: 'Counts writes; send it with PATCH to change only this version' }),
  created_by: Nullable(Type.String()),
  updated_by: Nullable(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const ruleView = (r: RuleRow) => ({
  id: r.id,
  name: r.name,
  description: r.description,
  text: r.text,
  enabled: r.enabled,
  is_default: r.is_default,
  version: r.version,
  created_by: r.created_by,
  updated_by: r.updated_by,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

const Id = Type.String({ minLength: 1, maxLength: 200 });
const ConnectorRef = Strict({
  id: Id,
  type: Type.String({ minLength: 1, maxLength: 100, description: 'The connector type (imap, http, …)' }),
  owner_user: Type.Optional(Uuid),
  owner_group: Type.Optional(Uuid),
  project: Type.Optional(Uuid),
});
const Resource = Type.Union([
  Strict({ type: Type.Literal('Model'), id: Id }),
  Strict({ type: Type.Literal('ConnectorType'), id: Id }),
  Strict({ type: Type.Literal('Connector'), connector: ConnectorRef }),
  Strict({ type: Type.Literal('Operation'), name: Id, connector: ConnectorRef }),
  Strict({ type: Type.Literal('Tool'), id: Id, read_only: Type.Boolean({ description: 'Whether the tool only reads (its readOnlyHint in tools/list)' }) }),
]);

type ConnectorBody = { id: string; type: string; owner_user?: string; owner_group?: string; project?: string };
type ResourceBody =
  | { type: 'Model' | 'ConnectorType'; id: string }
  | { type: 'Connector'; connector: ConnectorBody }
  | { type: 'Operation'; name: string; connector: ConnectorBody }
  | { type: 'Tool'; id: string; read_only: boolean };

function connectorRef(c: ConnectorBody) {
  return { id: c.id, type: c.type, ...(c.owner_user ? { ownerUser: c.owner_user } : {}), ...(c.owner_group ? { ownerGroup: c.owner_group } : {}), ...(c.project ? { project: c.project } : {}) };
}

function resourceOf(r: ResourceBody): PolicyResource {
  if (r.type === 'Connector') return { type: 'Connector', connector: connectorRef(r.connector) };
  if (r.type === 'Operation') return { type: 'Operation', name: r.name, connector: connectorRef(r.connector) };
  if (r.type === 'Tool') return { type: 'Tool', name: r.id, readOnly: r.read_only };
  return { type: r.type, id: r.id };
}

const Decision = Type.Union([Type.Literal('allow'), Type.Literal('deny')]);
const Pass = Type.Object({
  who: Type.Union([Type.Literal('user'), Type.Literal('agent')]),
  decision: Decision,
  rules: Type.Array(Type.String()),
  reason: Type.Optional(Type.String()),
  considered: Type.Array(Type.String()),
});

const AccessDecision = Type.Object({
  id: Type.String(),
  at: Timestamp,
  request_id: Nullable(Type.String()),
  subject: Type.Object({
    user_id: Nullable(Type.String()),
    handle: Nullable(Type.String()),
    agent_id: Nullable(Type.String()),
    agent_role: Nullable(Type.String()),
    groups: Type.Array(Type.String({ description: 'Group ids' })),
    roles: Type.Array(Type.String({ description: 'System role names' })),
  }),
  action: Type.String(),
  resource: Type.Object({ type: Type.String(), id: Type.String() }),
  decision: Decision,
  rules: Type.Array(Type.String(), { description: 'The rules that decided: the permits that allowed, or the forbids (or failing rules) that denied' }),
  reason: Nullable(Type.String({ description: 'Why, when no rule decided (default deny) or something failed' })),
  task_id: Nullable(Type.String()),
  project_id: Nullable(Type.String()),
});

const accessView = (e: AccessEntry) => ({
  id: e.id,
  at: e.at.toISOString(),
  request_id: e.request_id,
  subject: { user_id: e.subject_user_id, handle: e.subject_handle, agent_id: e.subject_agent_id, agent_role: e.subject_agent_role, groups: [...e.subject_groups], roles: [...e.subject_roles] },
  action: e.action,
  resource: { type: e.resource_type, id: e.resource_id },
  decision: e.decision,
  rules: [...e.rules],
  reason: e.reason,
  task_id: e.task_id,
  project_id: e.project_id,
});

/** Access rules, explain and the access audit; every route needs the `admin` role. */
export function policyRoutes(app: HttpServer, policy: PolicyService): void {
  const admin = (request: FastifyRequest): AdminAct => ({ by: request.principal!, ctx: requestContext(request) });

  app.get(
    '/v1/policy/rules',
    {
      schema: {
        tags: ['policy'],
        summary: 'List access rules, ordered by id',
        querystring: Strict({ ...PageQuery, enabled: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Object({ rules: Type.Array(Rule), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      const { limit, cursor, enabled } = request.query;
      const page = await policy.listRules(admin(request), { enabled, cursor, limit });
      return { rules: page.rules.map(ruleView), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) };
    },
  );

  app.post(
    '/v1/policy/rules',
    {
      schema: {
        tags: ['policy'],
        summary: 'Add an access rule',
        description: 'The rule must parse as one Cedar policy and name only actions, entity types and attributes CyNode knows; otherwise 400 naming the problem. Takes effect at once.',
        body: Strict({ name: Name, description: Type.Optional(Description), text: RuleText, enabled: Type.Optional(Type.Boolean()) }),
        response: { 201: Rule, ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const rule = await policy.createRule(admin(request), request.body);
      reply.code(201);
      return ruleView(rule);
    },
  );

  app.post(
    '/v1/policy/rules/validate',
    {
      schema: {
        tags: ['policy'],
        summary: 'Check a rule without storing it',
        description: 'The same checks as on create; answers 200 with the problems instead of refusing. Nothing is stored or audited.',
        body: Strict({ text: RuleText }),
        response: { 200: Type.Object({ valid: Type.Boolean(), problems: Type.Array(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => policy.validateRule(admin(request), request.body.text),
  );

  app.get(
    '/v1/policy/rules/:id',
    { schema: { tags: ['policy'], summary: 'One access rule', params: RuleParams, response: { 200: Rule, ...errors(400, 401, 403, 404) } } },
    async (request) => ruleView(await policy.getRule(admin(request), request.params.id)),
  );

  app.patch(
    '/v1/policy/rules/:id',
    {
      schema: {
        tags: ['policy'],
        summary: 'Change an access rule',
        description: 'With `version`, changes only that version of the rule (409 when it changed since); without, the last write wins. New text is validated as on create.',
        params: RuleParams,
        body: Strict({ name: Type.Optional(Name), description: Type.Optional(Description), text: Type.Optional(RuleText), enabled: Type.Optional(Type.Boolean()), version: Type.Optional(Type.Integer({ minimum: 1 })) }),
        response: { 200: Rule, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => ruleView(await policy.updateRule(admin(request), request.params.id, request.body)),
  );

  app.delete(
    '/v1/policy/rules/:id',
    {
      schema: {
        tags: ['policy'],
        summary: 'Delete an access rule',
        description: 'Default rules too. What no remaining rule allows is denied.',
        params: RuleParams,
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await policy.deleteRule(admin(request), request.params.id);
      reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/policy/explain',
    {
      schema: {
        tags: ['policy'],
        summary: 'What the rules decide for a hypothetical request',
        description: 'Decides as if the user (or an agent acting for them) asked, with their current groups and roles, and names the rules that decided and those considered. Nothing is done and nothing is written to the access audit.',
        body: Strict({
          subject: Strict({ user_id: Uuid, agent: Type.Optional(Strict({ id: Id, role: Type.String({ minLength: 1, maxLength: 100 }) })) }),
          action: Action,
          resource: Resource,
          context: Type.Optional(Strict({ task: Type.Optional(Id), project: Type.Optional(Id), request_size: Type.Optional(Type.Integer({ minimum: 0 })), time: Type.Optional(Timestamp) })),
        }),
        response: {
          200: Type.Object({
            decision: Decision,
            rules: Type.Array(Type.String(), { description: 'The rules that decided' }),
            reason: Type.Optional(Type.String()),
            considered: Type.Array(Type.String(), { description: 'The rules whose scope matched, so they were evaluated' }),
            passes: Type.Array(Pass, { description: 'One per principal: the user, then the agent (allowed only if both allow)' }),
            subject: Type.Object({ user_id: Type.String(), handle: Type.String(), groups: Type.Array(Type.String()), roles: Type.Array(Type.String()) }),
          }),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const b = request.body;
      const c = b.context;
      const e = await policy.explain(admin(request), {
        userId: b.subject.user_id,
        ...(b.subject.agent ? { agent: b.subject.agent } : {}),
        action: b.action as PolicyAction,
        resource: resourceOf(b.resource as ResourceBody),
        ...(c ? { context: { task: c.task, project: c.project, requestSize: c.request_size, time: c.time ? new Date(c.time) : undefined } } : {}),
      });
      return {
        decision: e.decision,
        rules: e.rules,
        ...(e.reason !== undefined ? { reason: e.reason } : {}),
        considered: e.considered,
        passes: e.passes.map((p) => ({ who: p.who, decision: p.decision, rules: p.rules, ...(p.reason !== undefined ? { reason: p.reason } : {}), considered: p.considered })),
        subject: { user_id: e.subject.id, handle: e.subject.handle, groups: [...e.subject.groups], roles: [...e.subject.roles] },
      };
    },
  );

  app.get(
    '/v1/audit/access',
    {
      schema: {
        tags: ['audit'],
        summary: 'Access decisions, allow and deny, newest first',
        querystring: Strict({
          ...PageQuery,
          subject: Type.Optional(Uuid),
          agent: Type.Optional(Id),
          action: Type.Optional(Type.String({ maxLength: 100 })),
          decision: Type.Optional(Decision),
          resource_type: Type.Optional(Type.String({ maxLength: 100 })),
          resource_id: Type.Optional(Id),
          task: Type.Optional(Id),
          project: Type.Optional(Id),
          rule: Type.Optional(Type.String({ maxLength: 100, description: 'Decisions this rule made' })),
          since: Type.Optional(Timestamp),
          until: Type.Optional(Timestamp),
        }),
        response: { 200: Type.Object({ decisions: Type.Array(AccessDecision), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await policy.accessLog(admin(request), {
        subjectUserId: q.subject,
        agentId: q.agent,
        action: q.action,
        decision: q.decision,
        resourceType: q.resource_type,
        resourceId: q.resource_id,
        taskId: q.task,
        projectId: q.project,
        rule: q.rule,
        since: q.since,
        until: q.until,
        cursor: q.cursor,
        limit: q.limit,
      });
      return { decisions: page.entries.map(accessView), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) };
    },
  );
}
