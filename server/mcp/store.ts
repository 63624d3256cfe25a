import type { Queryable } from '../db';
import { Conditions } from '../db/sql';

/** One tools/call as the trail keeps it: who, what, the decision and outcome; never an argument value. */
export interface ToolCallRecord {
  id: string;
  request_id: string | null;
  task_id: string | null;
  project_id: string | null;
  run_id: string | null;
  subject_type: 'user' | 'agent';
  user_id: string | null;
  agent_id: string | null;
  agent_role: string | null;
  tool_name: string;
  decision: 'allow' | 'deny';
  status: 'success' | 'error';
  duration_ms: number;
  error_type: string | null;
  policy_audit_id: string | null;
  /** Argument names and their JSON types (`{"task_id": "string"}`). */
  args_shape: Record<string, unknown>;
}

export interface ToolCallEntry extends ToolCallRecord {
  seq: number;
  created_at: Date;
}

export interface ToolCallFilter {
  toolName?: string;
  userId?: string;
  taskId?: string;
  decision?: 'allow' | 'deny';
  since?: string;
  beforeSeq?: number;
  limit: number;
}

const COLUMNS =
  'id, request_id, task_id, project_id, run_id, subject_type, user_id, agent_id, agent_role, tool_name, decision, status, duration_ms, error_type, policy_audit_id, args_shape';

/** Several at once: calls finishing together share one write (server/db/group-commit.ts). */
export async function appendToolCalls(q: Queryable, records: readonly ToolCallRecord[]): Promise<void> {
  await q.query(`INSERT INTO tool_call_audit (${COLUMNS}) SELECT ${COLUMNS} FROM jsonb_populate_recordset(null::tool_call_audit, $1::jsonb)`, [JSON.stringify(records)]);
}

/** Newest first; one extra row tells whether another page exists. */
export async function listToolCalls(q: Queryable, f: ToolCallFilter): Promise<{ entries: ToolCallEntry[]; more: boolean }> {
  const c = new Conditions();
  if (f.toolName) c.add('tool_name = ?', f.toolName);
  if (f.userId) c.add('user_id = ?', f.userId);
  if (f.taskId) c.add('task_id = ?', f.taskId);
  if (f.decision) c.add('decision = ?', f.decision);
  if (f.since) c.add('created_at >= ?', f.since);
  if (f.beforeSeq !== undefined) c.add('seq < ?', f.beforeSeq);
  const limit = c.param(f.limit + 1);
  const rows = await q.query<ToolCallEntry>(`SELECT seq, created_at, ${COLUMNS} FROM tool_call_audit ${c.where()} ORDER BY seq DESC LIMIT ${limit}`, c.params);
  return { entries: rows.slice(0, f.limit).map((r) => ({ ...r, seq: Number(r.seq) })), more: rows.length > f.limit };
}
