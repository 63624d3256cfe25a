import type { Queryable } from '../db';
import { dispatchableCondition } from '../nodes/store';

/*
 * SQL of the chat domain (migrations/0003_chat.sql): threads, their messages (always redacted
 * text), the chat audit log (never content), and the nodes that serve inference.
 */

/** A thread idle for longer than this is no longer the active one (spec §1.7: rotate after 2 h). */
export const ACTIVE_THREAD_HOURS = 2;

export interface ThreadRow {
  id: string;
  user_id: string;
  project_id: string | null;
  title: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface MessageRow {
  id: string;
  thread_id: string;
  role: 'user' | 'assistant' | 'system' | 'tool';
  content: string;
  metadata: Record<string, unknown> | null;
  created_at: Date;
}

export async function insertThread(q: Queryable, t: { userId: string; projectId: string; title: string | null }): Promise<ThreadRow> {
  const rows = await q.query<ThreadRow>('INSERT INTO chat_threads (user_id, project_id, title) VALUES ($1, $2, $3) RETURNING *', [t.userId, t.projectId, t.title]);
  return rows[0]!;
}

/** The user's own thread; null for anyone else's (callers answer 404 either way). */
export async function findOwnThread(q: Queryable, userId: string, id: string): Promise<ThreadRow | null> {
  const rows = await q.query<ThreadRow>('SELECT * FROM chat_threads WHERE id = $1 AND user_id = $2', [id, userId]);
  return rows[0] ?? null;
}

/**
 * The active thread of (user, project): the most recently updated one, if that was within the
 * last two hours; else a new one. Locked per pair so that two concurrent first messages do not
 * open two threads.
 */
export async function activeThread(q: Queryable, userId: string, projectId: string): Promise<ThreadRow> {
  await q.query(`SELECT pg_advisory_xact_lock(727011, hashtext($1 || '/' || $2))`, [userId, projectId]);
  const rows = await q.query<ThreadRow>(
    `SELECT * FROM chat_threads WHERE user_id = $1 AND project_id = $2 AND updated_at > now() - make_interval(hours => $3)
     ORDER BY updated_at DESC, id DESC LIMIT 1`,
    [userId, projectId, ACTIVE_THREAD_HOURS],
  );
  return rows[0] ?? (await insertThread(q, { userId, projectId, title: null }));
}

export async function listOwnThreads(q: Queryable, f: { userId: string; projectId?: string; limit: number; offset: number }): Promise<ThreadRow[]> {
  const params: unknown[] = [f.userId, f.limit, f.offset];
  let where = 'user_id = $1';
  if (f.projectId !== undefined) {
    params.push(f.projectId);
    where += ' AND project_id = $4';
  }
  return q.query<ThreadRow>(`SELECT * FROM chat_threads WHERE ${where} ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3`, params);
}

/** Appends a message (content already redacted) and marks the thread as just used. */
export async function appendMessage(q: Queryable, m: { threadId: string; role: MessageRow['role']; content: string; metadata: Record<string, unknown> | null }): Promise<MessageRow> {
  const rows = await q.query<MessageRow>(
    `WITH touched AS (UPDATE chat_threads SET updated_at = now() WHERE id = $1 RETURNING id)
     INSERT INTO chat_messages (thread_id, role, content, metadata) SELECT id, $2, $3, $4 FROM touched RETURNING *`,
    [m.threadId, m.role, m.content, m.metadata === null ? null : JSON.stringify(m.metadata)],
  );
  return rows[0]!;
}

export async function listMessages(q: Queryable, threadId: string, limit: number, offset: number): Promise<MessageRow[]> {
  return q.query<MessageRow>('SELECT * FROM chat_messages WHERE thread_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3', [threadId, limit, offset]);
}

export interface ChatAuditEntry {
  userId: string | null;
  projectId: string | null;
  threadId: string | null;
  outcome: 'success' | 'error' | 'canceled' | 'timeout';
  errorCode: string | null;
  model: string | null;
  nodeId: string | null;
  stream: boolean;
  attempts: number;
  redactionApplied: boolean;
  redactionKinds: string[];
  durationMs: number;
  requestId: string;
}

/** One row per completion request; no message content. */
export async function appendChatAudit(q: Queryable, e: ChatAuditEntry): Promise<void> {
  await q.query(
    `INSERT INTO chat_audit_log (user_id, project_id, thread_id, outcome, error_code, model, node_id, stream, attempts, redaction_applied, redaction_kinds, duration_ms, request_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [e.userId, e.projectId, e.threadId, e.outcome, e.errorCode, e.model, e.nodeId, e.stream, e.attempts, e.redactionApplied, JSON.stringify(e.redactionKinds), Math.round(e.durationMs), e.requestId],
  );
}

/** A node that serves inference now, with what it has. */
export interface InferenceNode {
  id: string;
  node_slug: string;
  worker_api_target_url: string;
  labels: string[];
  models: string[];
  /** Inference jobs (prompt tasks) running on it. */
  running: number;
}

/**
 * Nodes that may be sent inference now: dispatchable (the node registry's one rule, spec/node.md
 * D-6, the same readiness counts) and whose latest capability report says Ollama is running.
 */
export async function inferenceNodes(q: Queryable): Promise<InferenceNode[]> {
  const rows = await q.query<{ id: string; node_slug: string; worker_api_target_url: string; labels: unknown; models: unknown; running: number }>(
    `SELECT n.id, n.node_slug, n.worker_api_target_url, n.labels, n.capability->'inference'->'available_models' AS models,
            (SELECT count(*)::int FROM jobs j WHERE j.node_id = n.id AND j.status = 'running' AND j.kind = 'inference') AS running
     FROM nodes n
     WHERE ${dispatchableCondition('n')} AND (n.capability->'inference'->>'running')::boolean IS TRUE
     ORDER BY n.node_slug`,
  );
  return rows.map((r) => ({
    id: r.id,
    node_slug: r.node_slug,
    worker_api_target_url: r.worker_api_target_url,
    labels: Array.isArray(r.labels) ? r.labels.filter((l): l is string => typeof l === 'string') : [],
    models: Array.isArray(r.models) ? r.models.filter((m): m is string => typeof m === 'string') : [],
    running: r.running,
  }));
}
