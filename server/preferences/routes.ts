import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { Nullable, PageQuery, Strict, Timestamp, Uuid, decodeCursor, encodeCursor, errors } from '../http/schemas';
import { badRequest } from '../http/problem';
import { KEY_PATTERN, MAX_KEY_LENGTH } from './keys';
import type { PreferenceService } from './service';
import type { PreferenceAuditRow, PreferenceRow } from './store';

export const ScopeType = Type.Union([Type.Literal('system'), Type.Literal('group'), Type.Literal('user'), Type.Literal('project'), Type.Literal('task')]);
export const ValueType = Type.Union([Type.Literal('string'), Type.Literal('number'), Type.Literal('boolean'), Type.Literal('object'), Type.Literal('array'), Type.Literal('null')]);
export const ScopeId = Type.String({ minLength: 1, maxLength: 200, description: 'The group, user, project (id or slug) or task (id or your task name); none for system, yourself by default for user' });
export const Key = Type.String({ pattern: KEY_PATTERN, maxLength: MAX_KEY_LENGTH, description: 'Lowercase dot-separated name, e.g. agents.project_manager.max_steps' });
const Reason = Type.String({ maxLength: 1000, description: 'Why; kept in the preference audit log' });
const ExpectedVersion = Type.Integer({ minimum: 0, description: 'Write only if the preference is at this version (0: only if it does not exist yet); 409 otherwise' });

const Preference = Type.Object({
  key: Type.String(),
  value: Type.Unknown(),
  value_type: ValueType,
  version: Type.Integer(),
  scope_type: ScopeType,
  scope_id: Nullable(Uuid),
  created_at: Timestamp,
  updated_at: Timestamp,
  updated_by: Nullable(Uuid),
});

const Source = Type.Object({ key: Type.String(), scope_type: Type.String({ description: 'A scope, or `default` for a known key no scope sets' }), scope_id: Nullable(Uuid), version: Type.Integer() });
export const EffectiveAnswer = Type.Object({
  effective: Type.Record(Type.String(), Type.Unknown()),
  sources: Type.Optional(Type.Array(Source)),
  invalid: Type.Array(Type.Object({ key: Type.String(), scope_type: ScopeType, scope_id: Nullable(Uuid), version: Type.Integer(), reason: Type.String() })),
});

const AuditEntry = Type.Object({
  id: Uuid,
  created_at: Timestamp,
  action: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('deleted')]),
  scope_type: ScopeType,
  scope_id: Nullable(Uuid),
  key: Type.String(),
  old_version: Nullable(Type.Integer()),
  new_version: Nullable(Type.Integer()),
  changed_by: Nullable(Uuid),
  changed_by_handle: Nullable(Type.String()),
  via: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  request_id: Nullable(Type.String()),
});

export const preferenceView = (p: PreferenceRow) => ({
  key: p.key,
  value: p.value,
  value_type: p.value_type,
  version: p.version,
  scope_type: p.scope_type,
  scope_id: p.scope_id,
  created_at: p.created_at.toISOString(),
  updated_at: p.updated_at.toISOString(),
  updated_by: p.updated_by,
});

const auditView = (a: PreferenceAuditRow) => ({ ...a, created_at: a.created_at.toISOString() });

const ScopeQuery = { scope_type: ScopeType, scope_id: Type.Optional(ScopeId) };
const KeyParams = Strict({ key: Key });
const isIdCursor = (v: unknown): v is { id: string } => typeof v === 'object' && v !== null && typeof (v as { id: unknown }).id === 'string';

/** Preferences (README, Preferences): per scope, their fold, and their audit log. */
export function preferenceRoutes(app: HttpServer, prefs: PreferenceService): void {
  app.get(
    '/v1/prefs',
    {
      schema: {
        tags: ['preferences'],
        summary: 'The preferences set at one scope',
        querystring: Strict(ScopeQuery),
        response: { 200: Type.Object({ preferences: Type.Array(Preference) }), ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { preferences } = await prefs.list(request.principal!, { type: request.query.scope_type, id: request.query.scope_id }, requestContext(request));
      return { preferences: preferences.map(preferenceView) };
    },
  );

  app.get(
    '/v1/prefs/effective',
    {
      schema: {
        tags: ['preferences'],
        summary: 'The preferences in force in a task or project, folded task > project > user > group > system, with where each came from',
        querystring: Strict({ task_id: Type.Optional(ScopeId), project_id: Type.Optional(ScopeId), include_sources: Type.Boolean({ default: true }) }),
        response: { 200: EffectiveAnswer, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const q = request.query;
      if ((q.task_id === undefined) === (q.project_id === undefined)) throw badRequest('Give exactly one of task_id and project_id');
      const answer = await prefs.effective(request.principal!, { taskId: q.task_id, projectId: q.project_id }, requestContext(request));
      return q.include_sources ? answer : { effective: answer.effective, invalid: answer.invalid };
    },
  );

  app.get(
    '/v1/prefs/audit',
    {
      schema: {
        tags: ['preferences', 'audit'],
        summary: 'Every change of a preference, newest first, with its reason and versions (never values); admins only',
        querystring: Strict({ ...PageQuery, scope_type: Type.Optional(ScopeType), scope_id: Type.Optional(Uuid), key: Type.Optional(Key), changed_by: Type.Optional(Uuid) }),
        response: { 200: Type.Object({ entries: Type.Array(AuditEntry), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      const q = request.query;
      const after = decodeCursor(q.cursor, isIdCursor);
      const page = await prefs.auditLog(request.principal!, { scopeType: q.scope_type, scopeId: q.scope_id, key: q.key, changedBy: q.changed_by, afterId: after?.id, limit: q.limit }, requestContext(request));
      const last = page.entries.at(-1);
      return { entries: page.entries.map(auditView), ...(page.more && last ? { next_cursor: encodeCursor({ id: last.id }) } : {}) };
    },
  );

  app.get(
    '/v1/prefs/:key',
    {
      schema: { tags: ['preferences'], summary: 'One preference at one scope', params: KeyParams, querystring: Strict(ScopeQuery), response: { 200: Preference, ...errors(400, 401, 403, 404) } },
    },
    async (request) => preferenceView(await prefs.get(request.principal!, { type: request.query.scope_type, id: request.query.scope_id }, request.params.key, requestContext(request))),
  );

  app.put(
    '/v1/prefs/:key',
    {
      schema: {
        tags: ['preferences'],
        summary: 'Set a preference: created at version 1, each change adds one; known keys are type-checked',
        params: KeyParams,
        body: Strict({ ...ScopeQuery, value: Type.Unknown({ description: 'Any JSON; null masks lower scopes' }), value_type: Type.Optional(ValueType), expected_version: Type.Optional(ExpectedVersion), reason: Type.Optional(Reason) }),
        response: { 200: Type.Object({ ok: Type.Literal(true), key: Type.String(), version: Type.Integer(), created: Type.Boolean(), preference: Preference }), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const b = request.body;
      const { preference, created } = await prefs.set(
        request.principal!,
        { type: b.scope_type, id: b.scope_id },
        request.params.key,
        { value: b.value, valueType: b.value_type, expectedVersion: b.expected_version, reason: b.reason },
        requestContext(request),
      );
      return { ok: true as const, key: preference.key, version: preference.version, created, preference: preferenceView(preference) };
    },
  );

  app.delete(
    '/v1/prefs/:key',
    {
      schema: {
        tags: ['preferences'],
        summary: 'Remove a preference at one scope; lower scopes become effective again',
        params: KeyParams,
        querystring: Strict({ ...ScopeQuery, expected_version: Type.Optional(ExpectedVersion), reason: Type.Optional(Reason) }),
        response: { 200: Type.Object({ deleted: Type.Literal(true) }), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const q = request.query;
      await prefs.delete(request.principal!, { type: q.scope_type, id: q.scope_id }, request.params.key, { expectedVersion: q.expected_version, reason: q.reason }, requestContext(request));
      return { deleted: true as const };
    },
  );
}
