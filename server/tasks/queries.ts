import type { Queryable } from '../db';
import { grantsActionSql } from '../rbac/visibility';
import type { TaskRow } from './store';

/* What other domains may read about tasks: the one rule of who may see one. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID.test(s);

/** SQL true when `$1` (the caller) created the task `t` or may read tasks in its project. */
export const visibleTaskSql = `(t.created_by = $1::uuid OR ${grantsActionSql('$1::uuid', "'task.read'", 't.project_id')})`;

/**
 * A task the user may read, by id or by one of the user's own task names; null when there is
 * none or they may not see it (both answer 404: existence does not leak).
 */
export async function findVisibleTask(q: Queryable, userId: string, ref: string): Promise<TaskRow | null> {
  const rows = isUuid(ref)
    ? await q.query<TaskRow>(`SELECT t.* FROM tasks t WHERE t.id = $2 AND ${visibleTaskSql}`, [userId, ref])
    : await q.query<TaskRow>('SELECT t.* FROM tasks t WHERE t.created_by = $1 AND t.name = $2', [userId, ref]);
  return rows[0] ?? null;
}
