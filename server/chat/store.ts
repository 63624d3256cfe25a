import type { Queryable } from '../db';
import type { ProjectRow } from '../projects/store';
import { grantsActionSql } from '../rbac/store';

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

export async function listOwnThreads(q: Queryable, f: { userId: string; projectId?: string; limit: number; offset: number }): Promise<ThreadRow[]> {
  const params: unknown[] = [f.userId, f.limit, f.offset];
  let where = 'user_id = $1';
  if (f.projectId !== undefined) {
    params.push(f.projectId);
    where += ' AND project_id = $4';
  }
  return q.query<ThreadRow>(`SELECT * FROM chat_threads WHERE ${where} ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3`, params);
}

/**
 * Stores the newest user message of a completion in the active thread of (user, project) — the
 * most recently used one within two hours, else a new one — in one statement (one round trip on
 * the completion's critical path). Two first messages of the same pair at the same instant may
 * open two threads; both are the user's and the next message continues the newer one.
 */
export async function appendToActiveThread(q: Queryable, m: { userId: string; projectId: string; content: string; metadata: Record<string, unknown> | null }): Promise<string> {
  const rows = await q.query<{ thread_id: string }>(
    `WITH active AS (
       SELECT id FROM chat_threads WHERE user_id = $1 AND project_id = $2 AND updated_at > now() - make_interval(hours => $5)
       ORDER BY updated_at DESC, id DESC LIMIT 1
     ), created AS (
       INSERT INTO chat_threads (user_id, project_id) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM active) RETURNING id
     ), thread AS (
       SELECT id FROM active UNION ALL SELECT id FROM created
     ), touched AS (
       UPDATE chat_threads SET updated_at = now() WHERE id IN (SELECT id FROM active) RETURNING id
     )
     INSERT INTO chat_messages (thread_id, role, content, metadata) SELECT id, 'user', $3, $4 FROM thread RETURNING thread_id`,
    [m.userId, m.projectId, m.content, m.metadata === null ? null : JSON.stringify(m.metadata), ACTIVE_THREAD_HOURS],
  );
  return rows[0]!.thread_id;
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

/**
 * The chat's project with what the caller may do there, in one query (it is on every
 * completion's critical path): by id or slug, or the caller's default project when `ref` is null.
 */
export async function projectForChat(q: Queryable, userId: string, ref: string | null): Promise<(ProjectRow & { may_read: boolean; may_chat: boolean }) | null> {
  const where = ref === null ? 'p.default_for_user_id = $1' : /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref) ? 'p.id = $2::uuid' : 'p.slug = $2';
  const rows = await q.query<ProjectRow & { may_read: boolean; may_chat: boolean }>(
    `SELECT p.*, ${grantsActionSql('$1::uuid', "'project.read'", 'p.id')} AS may_read, ${grantsActionSql('$1::uuid', "'chat.use'", 'p.id')} AS may_chat
     FROM projects p WHERE ${where}`,
    ref === null ? [userId] : [userId, ref],
  );
  return rows[0] ?? null;
}
