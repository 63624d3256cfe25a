import type { Queryable } from '../db';
import { ACTIVE_GROUPS_OF_USER } from '../groups/memberships';

export type ScopeType = 'system' | 'group' | 'user' | 'project' | 'task';
export type ValueType = 'string' | 'number' | 'boolean' | 'object' | 'array' | 'null';

export interface PreferenceRow {
  id: string;
  scope_type: ScopeType;
  scope_id: string | null;
  key: string;
  value: unknown;
  value_type: ValueType;
  version: number;
  created_at: Date;
  updated_at: Date;
  updated_by: string | null;
}

export interface PreferenceAuditRow {
  id: string;
  created_at: Date;
  action: 'created' | 'updated' | 'deleted';
  scope_type: ScopeType;
  scope_id: string | null;
  key: string;
  old_version: number | null;
  new_version: number | null;
  changed_by: string | null;
  changed_by_handle: string | null;
  via: string | null;
  reason: string | null;
  request_id: string | null;
}

const COLUMNS = 'id, scope_type, scope_id, key, value, value_type, version, created_at, updated_at, updated_by';

/** `scope_id IS NOT DISTINCT FROM`: system rows have none, and `=` never matches null. */
const AT_SCOPE = 'scope_type = $1 AND scope_id IS NOT DISTINCT FROM $2::uuid';

export async function listAtScope(q: Queryable, scopeType: ScopeType, scopeId: string | null): Promise<PreferenceRow[]> {
  return q.query<PreferenceRow>(`SELECT ${COLUMNS} FROM preferences WHERE ${AT_SCOPE} ORDER BY key`, [scopeType, scopeId]);
}

export async function findPreference(q: Queryable, scopeType: ScopeType, scopeId: string | null, key: string): Promise<PreferenceRow | null> {
  const rows = await q.query<PreferenceRow>(`SELECT ${COLUMNS} FROM preferences WHERE ${AT_SCOPE} AND key = $3`, [scopeType, scopeId, key]);
  return rows[0] ?? null;
}

/** Holds the row until the transaction ends, so concurrent writes of one key line up. */
export async function lockPreference(q: Queryable, scopeType: ScopeType, scopeId: string | null, key: string): Promise<PreferenceRow | null> {
  const rows = await q.query<PreferenceRow>(`SELECT ${COLUMNS} FROM preferences WHERE ${AT_SCOPE} AND key = $3 FOR UPDATE`, [scopeType, scopeId, key]);
  return rows[0] ?? null;
}

/** Version 1; null when a concurrent writer created the key first. */
export async function insertPreference(
  q: Queryable,
  p: { scopeType: ScopeType; scopeId: string | null; key: string; value: unknown; valueType: ValueType; by: string },
): Promise<PreferenceRow | null> {
  const rows = await q.query<PreferenceRow>(
    `INSERT INTO preferences (scope_type, scope_id, key, value, value_type, version, updated_by)
     VALUES ($1, $2, $3, $4::jsonb, $5, 1, $6)
     ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
    [p.scopeType, p.scopeId, p.key, JSON.stringify(p.value), p.valueType, p.by],
  );
  return rows[0] ?? null;
}

export async function updatePreference(q: Queryable, id: string, p: { value: unknown; valueType: ValueType; by: string }): Promise<PreferenceRow> {
  const rows = await q.query<PreferenceRow>(
    `UPDATE preferences SET value = $2::jsonb, value_type = $3, version = version + 1, updated_at = now(), updated_by = $4
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, JSON.stringify(p.value), p.valueType, p.by],
  );
  return rows[0]!;
}

export async function deletePreference(q: Queryable, id: string): Promise<void> {
  await q.query('DELETE FROM preferences WHERE id = $1', [id]);
}

/**
 * Every preference that applies to a user in a project (and task), in fold order: scope
 * precedence from lowest (system) to highest (task), then groups by ascending id, then
 * `updated_at`, then `id` (README, Preferences). Later rows win.
 */
export async function foldCandidates(q: Queryable, f: { userId: string; projectId: string | null; taskId: string | null }): Promise<PreferenceRow[]> {
  return q.query<PreferenceRow>(
    `SELECT ${COLUMNS} FROM preferences
     WHERE scope_type = 'system'
        OR (scope_type = 'group' AND scope_id IN (${ACTIVE_GROUPS_OF_USER}))
        OR (scope_type = 'user' AND scope_id = $1)
        OR (scope_type = 'project' AND scope_id = $2::uuid)
        OR (scope_type = 'task' AND scope_id = $3::uuid)
     ORDER BY CASE scope_type WHEN 'system' THEN 0 WHEN 'group' THEN 1 WHEN 'user' THEN 2 WHEN 'project' THEN 3 ELSE 4 END,
              scope_id, updated_at, id`,
    [f.userId, f.projectId, f.taskId],
  );
}

/** Whether the group or user a scope names exists (projects and tasks are asked of their services). */
export async function scopeSubjectExists(q: Queryable, scopeType: 'group' | 'user', id: string): Promise<boolean> {
  const table = scopeType === 'group' ? 'groups' : 'users';
  const rows = await q.query(`SELECT 1 FROM ${table} WHERE id = $1`, [id]);
  return rows.length > 0;
}

export async function isActiveGroupMember(q: Queryable, userId: string, groupId: string): Promise<boolean> {
  const rows = await q.query(`SELECT 1 FROM (${ACTIVE_GROUPS_OF_USER}) g WHERE g.group_id = $2`, [userId, groupId]);
  return rows.length > 0;
}

export async function appendPreferenceAudit(
  q: Queryable,
  e: {
    action: PreferenceAuditRow['action'];
    scopeType: ScopeType;
    scopeId: string | null;
    key: string;
    oldVersion: number | null;
    newVersion: number | null;
    by: string;
    byHandle: string;
    via: string;
    reason: string | null;
    requestId: string | null;
  },
): Promise<void> {
  await q.query(
    `INSERT INTO preference_audit_log (action, scope_type, scope_id, key, old_version, new_version, changed_by, changed_by_handle, via, reason, request_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [e.action, e.scopeType, e.scopeId, e.key, e.oldVersion, e.newVersion, e.by, e.byHandle, e.via, e.reason, e.requestId],
  );
}

export interface AuditFilter {
  scopeType?: ScopeType;
  scopeId?: string;
  key?: string;
  changedBy?: string;
  /** The page after this entry's id (newest first). */
  afterId?: string;
  limit: number;
}

/** Newest first; one extra row tells whether another page exists. */
export async function listPreferenceAudit(q: Queryable, f: AuditFilter): Promise<{ entries: PreferenceAuditRow[]; more: boolean }> {
  const params: unknown[] = [];
  const where: string[] = [];
  const add = (sql: (p: string) => string, v: unknown) => {
    params.push(v);
    where.push(sql(`$${params.length}`));
  };
  if (f.scopeType !== undefined) add((p) => `scope_type = ${p}`, f.scopeType);
  if (f.scopeId !== undefined) add((p) => `scope_id = ${p}::uuid`, f.scopeId);
  if (f.key !== undefined) add((p) => `key = ${p}`, f.key);
  if (f.changedBy !== undefined) add((p) => `changed_by = ${p}::uuid`, f.changedBy);
  // Compared in the database: timestamps there are finer than a cursor's would be.
  if (f.afterId !== undefined) add((p) => `(created_at, id) < (SELECT a.created_at, a.id FROM preference_audit_log a WHERE a.id = ${p}::uuid)`, f.afterId);
  params.push(f.limit + 1);
  const rows = await q.query<PreferenceAuditRow>(
    `SELECT * FROM preference_audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  return { entries: rows.slice(0, f.limit), more: rows.length > f.limit };
}
