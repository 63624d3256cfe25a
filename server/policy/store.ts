import type { Queryable } from '../db';
import { Conditions } from '../db/sql';
import type { UserSubject } from './request';

export interface RuleRow {
  id: string;
  name: string;
  description: string;
  text: string;
  enabled: boolean;
  is_default: boolean;
  version: number;
  created_by: string | null;
  updated_by: string | null;
  created_at: Date;
  updated_at: Date;
}

const RULE_COLUMNS = 'id, name, description, text, enabled, is_default, version, created_by, updated_by, created_at, updated_at';

/** Every rule, for the engine. */
export function allRules(q: Queryable): Promise<RuleRow[]> {
  return q.query<RuleRow>(`SELECT ${RULE_COLUMNS} FROM policy_rules ORDER BY id`);
}

/** Ordered by id; one extra row tells whether another page exists. */
export function listRules(q: Queryable, f: { afterId?: string; enabled?: boolean; limit: number }): Promise<RuleRow[]> {
  const c = new Conditions();
  if (f.afterId !== undefined) c.add('id > ?', f.afterId);
  if (f.enabled !== undefined) c.add('enabled = ?', f.enabled);
  const limit = c.param(f.limit);
  return q.query<RuleRow>(`SELECT ${RULE_COLUMNS} FROM policy_rules ${c.where()} ORDER BY id LIMIT ${limit}`, c.params);
}

export async function findRule(q: Queryable, id: string, lock = false): Promise<RuleRow | null> {
  const rows = await q.query<RuleRow>(`SELECT ${RULE_COLUMNS} FROM policy_rules WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ?? null;
}

export async function insertRule(q: Queryable, r: { name: string; description: string; text: string; enabled: boolean; by: string }): Promise<RuleRow> {
  const rows = await q.query<RuleRow>(
    `INSERT INTO policy_rules (name, description, text, enabled, created_by, updated_by) VALUES ($1, $2, $3, $4, $5, $5) RETURNING ${RULE_COLUMNS}`,
    [r.name, r.description, r.text, r.enabled, r.by],
  );
  return rows[0]!;
}

export interface RuleChange {
  name?: string;
  description?: string;
  text?: string;
  enabled?: boolean;
}

export async function updateRule(q: Queryable, id: string, change: RuleChange, by: string): Promise<RuleRow> {
  const rows = await q.query<RuleRow>(
    `UPDATE policy_rules SET name = COALESCE($2, name), description = COALESCE($3, description), text = COALESCE($4, text),
       enabled = COALESCE($5, enabled), version = version + 1, updated_by = $6, updated_at = now()
     WHERE id = $1 RETURNING ${RULE_COLUMNS}`,
    [id, change.name ?? null, change.description ?? null, change.text ?? null, change.enabled ?? null, by],
  );
  return rows[0]!;
}

export async function deleteRule(q: Queryable, id: string): Promise<void> {
  await q.query('DELETE FROM policy_rules WHERE id = $1', [id]);
}

/**
 * What a decision needs to know about a user: their handle, the active groups they are an active
 * member of, and the roles bound to them at system scope, directly or through a group. Project
 * roles are left out: a rule naming `Role::"member"` could not tell which project it meant.
 */
export async function userSubject(q: Queryable, userId: string): Promise<UserSubject | null> {
  const rows = await q.query<{ id: string; handle: string; groups: string[]; roles: string[] }>(
    `WITH my_groups AS (
       SELECT g.id FROM group_memberships gm JOIN groups g ON g.id = gm.group_id
       WHERE gm.user_id = $1 AND gm.is_active AND g.is_active
     )
     SELECT u.id, u.handle,
       COALESCE((SELECT jsonb_agg(id::text ORDER BY id) FROM my_groups), '[]'::jsonb) AS groups,
       COALESCE((SELECT jsonb_agg(DISTINCT r.name) FROM role_bindings rb JOIN roles r ON r.id = rb.role_id
                 WHERE rb.is_active AND rb.scope_type = 'system'
                   AND ((rb.subject_type = 'user' AND rb.subject_id = $1) OR (rb.subject_type = 'group' AND rb.subject_id IN (SELECT id FROM my_groups)))), '[]'::jsonb) AS roles
     FROM users u WHERE u.id = $1 AND u.is_active`,
    [userId],
  );
  const r = rows[0];
  return r ? { id: r.id, handle: r.handle, groups: r.groups, roles: r.roles } : null;
}

/** One decision as the access audit keeps it. */
export interface AccessRecord {
  id: string;
  request_id: string | null;
  subject_user_id: string | null;
  subject_handle: string | null;
  subject_agent_id: string | null;
  subject_agent_role: string | null;
  subject_groups: readonly string[];
  subject_roles: readonly string[];
  action: string;
  resource_type: string;
  resource_id: string;
  decision: 'allow' | 'deny';
  rules: readonly string[];
  reason: string | null;
  task_id: string | null;
  project_id: string | null;
}

const RECORD_COLUMNS =
  'id, request_id, subject_user_id, subject_handle, subject_agent_id, subject_agent_role, subject_groups, subject_roles, action, resource_type, resource_id, decision, rules, reason, task_id, project_id';

/** Many decisions in one statement (group commit: concurrent decisions share it). */
export async function appendAccessRecords(q: Queryable, records: readonly AccessRecord[]): Promise<void> {
  await q.query(`INSERT INTO access_audit (${RECORD_COLUMNS}) SELECT ${RECORD_COLUMNS} FROM jsonb_populate_recordset(null::access_audit, $1::jsonb)`, [JSON.stringify(records)]);
}

export interface AccessEntry extends AccessRecord {
  seq: number;
  at: Date;
}

export interface AccessFilter {
  subjectUserId?: string;
  agentId?: string;
  action?: string;
  decision?: 'allow' | 'deny';
  resourceType?: string;
  resourceId?: string;
  taskId?: string;
  projectId?: string;
  /** Decisions one of these rules made. */
  rule?: string;
  since?: string;
  until?: string;
  beforeSeq?: number;
  limit: number;
}

/** Newest first; one extra row tells whether another page exists. */
export async function listAccess(q: Queryable, f: AccessFilter): Promise<{ entries: AccessEntry[]; more: boolean }> {
  const c = new Conditions();
  if (f.subjectUserId) c.add('subject_user_id = ?', f.subjectUserId);
  if (f.agentId) c.add('subject_agent_id = ?', f.agentId);
  if (f.action) c.add('action = ?', f.action);
  if (f.decision) c.add('decision = ?', f.decision);
  if (f.resourceType) c.add('resource_type = ?', f.resourceType);
  if (f.resourceId) c.add('resource_id = ?', f.resourceId);
  if (f.taskId) c.add('task_id = ?', f.taskId);
  if (f.projectId) c.add('project_id = ?', f.projectId);
  if (f.rule) c.add('rules @> jsonb_build_array(?::text)', f.rule);
  if (f.since) c.add('at >= ?', f.since);
  if (f.until) c.add('at < ?', f.until);
  if (f.beforeSeq !== undefined) c.add('seq < ?', f.beforeSeq);
  const limit = c.param(f.limit + 1);
  const rows = await q.query<AccessEntry>(`SELECT seq, at, ${RECORD_COLUMNS} FROM access_audit ${c.where()} ORDER BY seq DESC LIMIT ${limit}`, c.params);
  return { entries: rows.slice(0, f.limit).map((r) => ({ ...r, seq: Number(r.seq) })), more: rows.length > f.limit };
}
