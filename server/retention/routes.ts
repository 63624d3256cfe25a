import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { Nullable, Strict, Timestamp, Uuid, errors } from '../http/schemas';
import type { ProjectRow } from '../projects/store';
import type { RetentionService } from './service';
import type { EffectivePolicy, PolicyRow, PurgeRow } from './store';

const Days = Nullable(Type.Integer({ minimum: 1, maximum: 36_500, description: 'Days to keep; null keeps forever' }));
const Source = Type.Union([Type.Literal('project'), Type.Literal('system')]);

const SystemPolicy = Type.Object({
  scope: Type.Literal('system'),
  run_logs_days: Days,
  transcripts_days: Days,
  updated_at: Timestamp,
  updated_by: Nullable(Uuid),
});

const ProjectPolicy = Type.Object({
  scope: Type.Literal('project'),
  project_id: Uuid,
  run_logs_days: Days,
  transcripts_days: Days,
  run_logs_inherited: Type.Boolean({ description: 'The project sets no run log period: the system policy applies' }),
  transcripts_inherited: Type.Boolean({ description: 'The project sets no transcript period: the system policy applies' }),
  effective: Type.Object({ run_logs_days: Days, run_logs_source: Source, transcripts_days: Days, transcripts_source: Source }),
  updated_at: Nullable(Timestamp),
  updated_by: Nullable(Uuid),
});

const Purge = Type.Object({
  purge_id: Uuid,
  trigger: Type.Union([Type.Literal('schedule'), Type.Literal('manual')]),
  started_at: Timestamp,
  finished_at: Timestamp,
  run_log_lines: Type.Integer(),
  transcript_segments: Type.Integer(),
  run_logs: Type.Array(
    Type.Object({ run_id: Uuid, project_id: Nullable(Uuid), lines: Type.Integer(), first_seq: Type.Integer(), last_seq: Type.Integer(), days: Type.Integer(), source: Source }),
  ),
  transcripts: Type.Array(
    Type.Object({ session_id: Nullable(Uuid), run_id: Nullable(Uuid), project_id: Nullable(Uuid), segments: Type.Integer(), days: Type.Integer(), source: Source }),
  ),
  system_policy: Type.Object({ run_logs_days: Days, transcripts_days: Days }),
  access_audit: Type.Optional(Type.Object({ rows: Type.Integer(), days: Type.Integer() })),
  tool_call_audit: Type.Optional(Type.Object({ rows: Type.Integer(), days: Type.Integer() })),
  agent_tokens: Type.Optional(Type.Object({ rows: Type.Integer(), days: Type.Integer() })),
});

const systemView = (p: PolicyRow) => ({
  scope: 'system' as const,
  run_logs_days: p.run_logs_days,
  transcripts_days: p.transcripts_days,
  updated_at: p.updated_at.toISOString(),
  updated_by: p.updated_by,
});

const projectView = ({ project, own, effective }: { project: ProjectRow; own: PolicyRow | null; effective: EffectivePolicy }) => ({
  scope: 'project' as const,
  project_id: project.id,
  run_logs_days: own?.run_logs_set ? own.run_logs_days : null,
  transcripts_days: own?.transcripts_set ? own.transcripts_days : null,
  run_logs_inherited: !own?.run_logs_set,
  transcripts_inherited: !own?.transcripts_set,
  effective: {
    run_logs_days: effective.run_logs.days,
    run_logs_source: effective.run_logs.source,
    transcripts_days: effective.transcripts.days,
    transcripts_source: effective.transcripts.source,
  },
  updated_at: own ? own.updated_at.toISOString() : null,
  updated_by: own?.updated_by ?? null,
});

const purgeView = (p: PurgeRow) => ({
  purge_id: p.id,
  trigger: p.trigger,
  started_at: p.started_at.toISOString(),
  finished_at: p.finished_at.toISOString(),
  run_log_lines: p.run_log_lines,
  transcript_segments: p.transcript_segments,
  ...p.details,
});

/** A project id or its slug. */
const RefParams = Strict({ id: Type.String({ minLength: 1, maxLength: 100, description: 'Project id or slug' }) });

/** Retention policies (system and per project) and the purge that applies them. */
export function retentionRoutes(app: HttpServer, retention: RetentionService): void {
  app.get(
    '/v1/retention/policies/system',
    { schema: { tags: ['retention'], summary: 'The system retention policy (admins and operators)', response: { 200: SystemPolicy, ...errors(401, 403) } } },
    async (request) => systemView(await retention.system(request.principal!, requestContext(request))),
  );

  app.put(
    '/v1/retention/policies/system',
    {
      schema: {
        tags: ['retention'],
        summary: 'Set the system retention policy (admins)',
        description: 'Applies to every project that does not set its own period. Expiry is decided at purge time, so a shorter period also applies to what is already stored.',
        body: Strict({ run_logs_days: Days, transcripts_days: Days }),
        response: { 200: SystemPolicy, ...errors(400, 401, 403) },
      },
    },
    async (request) => systemView(await retention.setSystem(request.principal!, request.body, requestContext(request))),
  );

  app.get(
    '/v1/projects/:id/retention',
    {
      schema: { tags: ['retention'], summary: "A project's retention policy and the periods in effect", params: RefParams, response: { 200: ProjectPolicy, ...errors(400, 401, 404) } },
    },
    async (request) => projectView(await retention.project(request.principal!, request.params.id, requestContext(request))),
  );

  app.put(
    '/v1/projects/:id/retention',
    {
      schema: {
        tags: ['retention'],
        summary: "Replace a project's retention policy (its owners and admins)",
        description: 'A field left out is not set: the system policy applies. null keeps forever.',
        params: RefParams,
        body: Strict({ run_logs_days: Type.Optional(Days), transcripts_days: Type.Optional(Days) }),
        response: { 200: ProjectPolicy, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => projectView(await retention.setProject(request.principal!, request.params.id, request.body, requestContext(request))),
  );

  app.post(
    '/v1/retention/purge',
    {
      schema: {
        tags: ['retention'],
        summary: 'Purge expired run logs and transcript segments now (admins)',
        description: 'Answers what was purged, per run and per session, with the period that applied. Also recorded in the audit trail.',
        body: Type.Optional(Strict({})),
        response: { 200: Purge, ...errors(400, 401, 403) },
      },
    },
    async (request) => purgeView(await retention.purgeNow(request.principal!, requestContext(request))),
  );
}
