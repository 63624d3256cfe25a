import type { Queryable } from '../db';

/** Where an effective retention period comes from. */
export type PolicySource = 'project' | 'system';

export interface PolicyRow {
  project_id: string | null;
  run_logs_days: number | null;
  run_logs_set: boolean;
  transcripts_days: number | null;
  transcripts_set: boolean;
  updated_at: Date;
  updated_by: string | null;
}

/** Days kept (null: forever) and the level that decided it. */
export interface Period {
  days: number | null;
  source: PolicySource;
}

export interface EffectivePolicy {
  run_logs: Period;
  transcripts: Period;
}

/** The system policy; migration 0008 creates its row (keep forever). */
export async function systemPolicy(q: Queryable): Promise<PolicyRow> {
  const rows = await q.query<PolicyRow>('SELECT * FROM retention_policies WHERE project_id IS NULL');
  return rows[0]!;
}

/** A project's own policy; null when it never set one. */
export async function projectPolicy(q: Queryable, projectId: string): Promise<PolicyRow | null> {
  const rows = await q.query<PolicyRow>('SELECT * FROM retention_policies WHERE project_id = $1', [projectId]);
  return rows[0] ?? null;
}

export async function saveSystemPolicy(q: Queryable, p: { runLogsDays: number | null; transcriptsDays: number | null; by: string }): Promise<PolicyRow> {
  const rows = await q.query<PolicyRow>(
    'UPDATE retention_policies SET run_logs_days = $1, transcripts_days = $2, updated_at = now(), updated_by = $3 WHERE project_id IS NULL RETURNING *',
    [p.runLogsDays, p.transcriptsDays, p.by],
  );
  return rows[0]!;
}

/** `undefined` for a field: not set, the project inherits the system's. */
export async function saveProjectPolicy(q: Queryable, projectId: string, p: { runLogsDays?: number | null; transcriptsDays?: number | null; by: string }): Promise<PolicyRow> {
  const rows = await q.query<PolicyRow>(
    `INSERT INTO retention_policies (project_id, run_logs_days, run_logs_set, transcripts_days, transcripts_set, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT ((COALESCE(project_id, '00000000-0000-0000-0000-000000000000'::uuid))) DO UPDATE
       SET run_logs_days = EXCLUDED.run_logs_days, run_logs_set = EXCLUDED.run_logs_set,
           transcripts_days = EXCLUDED.transcripts_days, transcripts_set = EXCLUDED.transcripts_set,
           updated_at = now(), updated_by = EXCLUDED.updated_by
     RETURNING *`,
    [projectId, p.runLogsDays ?? null, p.runLogsDays !== undefined, p.transcriptsDays ?? null, p.transcriptsDays !== undefined, p.by],
  );
  return rows[0]!;
}

/** The project's value where it set one, else the system's. */
export function effective(system: PolicyRow, project: PolicyRow | null): EffectivePolicy {
  return {
    run_logs: project?.run_logs_set ? { days: project.run_logs_days, source: 'project' } : { days: system.run_logs_days, source: 'system' },
    transcripts: project?.transcripts_set ? { days: project.transcripts_days, source: 'project' } : { days: system.transcripts_days, source: 'system' },
  };
}

/** The shortest period any policy sets for a field: nothing younger can have expired. */
async function shortestDays(q: Queryable, field: 'run_logs' | 'transcripts'): Promise<number | null> {
  const rows = await q.query<{ days: number | null }>(`SELECT min(${field}_days) AS days FROM retention_policies WHERE ${field}_set`);
  return rows[0]?.days ?? null;
}

export interface PurgedLogs {
  run_id: string;
  project_id: string | null;
  lines: number;
  first_seq: number;
  last_seq: number;
  days: number;
  source: PolicySource;
}

/**
 * Log lines older than their run's effective period (its task's project, else the system's)
 * are emptied in place: message cleared, data `{purged: true}`. The rows stay, so every run's
 * seq stays dense and replay with `after=` keeps working; a reader sees which seqs were purged.
 */
export async function purgeRunLogs(q: Queryable): Promise<PurgedLogs[]> {
  const shortest = await shortestDays(q, 'run_logs');
  if (shortest === null) return [];
  const rows = await q.query<PurgedLogs>(
    `WITH candidates AS (
       SELECT e.run_id, e.seq, e.created_at, t.project_id,
              CASE WHEN p.run_logs_set THEN p.run_logs_days ELSE sys.run_logs_days END AS days,
              CASE WHEN p.run_logs_set THEN 'project' ELSE 'system' END AS source
       FROM run_events e
       JOIN runs r ON r.id = e.run_id
       JOIN tasks t ON t.id = r.task_id
       CROSS JOIN (SELECT run_logs_days FROM retention_policies WHERE project_id IS NULL) sys
       LEFT JOIN retention_policies p ON p.project_id = t.project_id
       WHERE e.kind = 'log' AND e.created_at < now() - make_interval(days => $1::int)
         AND (e.message IS NOT NULL OR e.data IS DISTINCT FROM '{"purged": true}'::jsonb)
     ), expired AS (
       SELECT * FROM candidates WHERE days IS NOT NULL AND created_at < now() - make_interval(days => days)
     ), purged AS (
       UPDATE run_events e SET message = NULL, data = '{"purged": true}'::jsonb
       FROM expired x WHERE e.run_id = x.run_id AND e.seq = x.seq
         -- Checked again on the row itself: a purge of another gateway that got there first wins.
         AND (e.message IS NOT NULL OR e.data IS DISTINCT FROM '{"purged": true}'::jsonb)
       RETURNING e.run_id, e.seq
     )
     SELECT x.run_id, x.project_id, x.days, x.source, count(*)::int AS lines, min(x.seq)::int AS first_seq, max(x.seq)::int AS last_seq
     FROM purged p JOIN expired x ON x.run_id = p.run_id AND x.seq = p.seq
     GROUP BY x.run_id, x.project_id, x.days, x.source
     ORDER BY x.run_id`,
    [shortest],
  );
  return rows.map((r) => ({ ...r, lines: Number(r.lines), first_seq: Number(r.first_seq), last_seq: Number(r.last_seq), days: Number(r.days) }));
}

export interface PurgedSegments {
  session_id: string | null;
  run_id: string | null;
  project_id: string | null;
  segments: number;
  days: number;
  source: PolicySource;
}

/**
 * Transcript segments older than their effective period (the project of the run's task, or of
 * the session; none: the system's) become tombstones: content and metadata cleared, purged_at set.
 */
export async function purgeTranscripts(q: Queryable): Promise<PurgedSegments[]> {
  const shortest = await shortestDays(q, 'transcripts');
  if (shortest === null) return [];
  const rows = await q.query<PurgedSegments>(
    `WITH candidates AS (
       SELECT s.id, s.session_id, s.run_id, s.created_at, o.project_id,
              CASE WHEN p.transcripts_set THEN p.transcripts_days ELSE sys.transcripts_days END AS days,
              CASE WHEN p.transcripts_set THEN 'project' ELSE 'system' END AS source
       FROM transcript_segments s
       LEFT JOIN runs r ON r.id = s.run_id
       LEFT JOIN tasks t ON t.id = r.task_id
       LEFT JOIN sessions ss ON ss.id = s.session_id
       CROSS JOIN LATERAL (SELECT COALESCE(t.project_id, ss.project_id) AS project_id) o
       CROSS JOIN (SELECT transcripts_days FROM retention_policies WHERE project_id IS NULL) sys
       LEFT JOIN retention_policies p ON p.project_id = o.project_id
       WHERE s.purged_at IS NULL AND s.created_at < now() - make_interval(days => $1::int)
     ), expired AS (
       SELECT * FROM candidates WHERE days IS NOT NULL AND created_at < now() - make_interval(days => days)
     ), purged AS (
       UPDATE transcript_segments s SET content = NULL, metadata = NULL, purged_at = now()
       FROM expired x WHERE s.id = x.id AND s.purged_at IS NULL
       RETURNING s.id
     )
     SELECT x.session_id, x.run_id, x.project_id, x.days, x.source, count(*)::int AS segments
     FROM purged p JOIN expired x ON x.id = p.id
     GROUP BY x.session_id, x.run_id, x.project_id, x.days, x.source
     ORDER BY x.session_id, x.run_id`,
    [shortest],
  );
  return rows.map((r) => ({ ...r, segments: Number(r.segments), days: Number(r.days) }));
}

/**
 * Deletes access-audit decisions older than `days`: listing models writes one per model per
 * call, so the table grows with use and is kept for a bounded period only. Returns the count.
 */
export async function purgeAccessAudit(q: Queryable, days: number): Promise<number> {
  const rows = await q.query<{ n: string }>(
    `WITH gone AS (DELETE FROM access_audit WHERE at < now() - make_interval(days => $1::int) RETURNING 1) SELECT count(*)::text AS n FROM gone`,
    [days],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Deletes MCP tool-call audit rows older than `days` (kept as long as access decisions). Returns the count. */
export async function purgeToolCallAudit(q: Queryable, days: number): Promise<number> {
  const rows = await q.query<{ n: string }>(
    `WITH gone AS (DELETE FROM tool_call_audit WHERE created_at < now() - make_interval(days => $1::int) RETURNING 1) SELECT count(*)::text AS n FROM gone`,
    [days],
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * Deletes agent tokens that expired more than `days` ago (kept as long as the access decisions
 * that name their agent). Returns the count.
 */
export async function purgeAgentTokens(q: Queryable, days: number): Promise<number> {
  const rows = await q.query<{ n: string }>(
    `WITH gone AS (DELETE FROM agent_tokens WHERE expires_at < now() - make_interval(days => $1::int) RETURNING 1) SELECT count(*)::text AS n FROM gone`,
    [days],
  );
  return Number(rows[0]?.n ?? 0);
}

export interface PurgeRow {
  id: string;
  trigger: 'schedule' | 'manual';
  requested_by: string | null;
  started_at: Date;
  finished_at: Date;
  run_log_lines: number;
  transcript_segments: number;
  details: {
    run_logs: PurgedLogs[];
    transcripts: PurgedSegments[];
    access_audit?: { rows: number; days: number };
    tool_call_audit?: { rows: number; days: number };
    agent_tokens?: { rows: number; days: number };
    system_policy: { run_logs_days: number | null; transcripts_days: number | null } };
}

export async function insertPurge(q: Queryable, p: Omit<PurgeRow, 'id' | 'finished_at'>): Promise<PurgeRow> {
  const rows = await q.query<PurgeRow>(
    `INSERT INTO retention_purges (trigger, requested_by, started_at, run_log_lines, transcript_segments, details)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [p.trigger, p.requested_by, p.started_at, p.run_log_lines, p.transcript_segments, JSON.stringify(p.details)],
  );
  const row = rows[0]!;
  return { ...row, run_log_lines: Number(row.run_log_lines), transcript_segments: Number(row.transcript_segments) };
}
