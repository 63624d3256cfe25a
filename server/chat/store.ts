import type { Queryable } from '../db';
import type { ProjectRow } from '../projects/store';
import { grantsActionSql } from '../rbac/visibility';

/*
 * SQL of the chat domain (migrations/0003_chat.sql): threads, their messages (always redacted
 * text), the chat audit log (never content), and the nodes that serve inference.
 */

/** A thread idle for longer than this is no longer the active one (threads rotate after 2 h). */
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

/** Renames the user's own thread; null when it is not theirs (or gone). */
export async function renameOwnThread(q: Queryable, userId: string, id: string, title: string | null): Promise<ThreadRow | null> {
  const rows = await q.query<ThreadRow>('UPDATE chat_threads SET title = $3 WHERE id = $1 AND user_id = $2 RETURNING *', [id, userId, title]);
  return rows[0] ?? null;
}

/**
 * Deletes the user's own thread and its messages; answers how many messages went, or null when
 * the thread is not theirs. Chat audit rows keep the thread's id (they have no reference to it).
 */
export async function deleteOwnThread(q: Queryable, userId: string, id: string): Promise<number | null> {
  const rows = await q.query<{ messages: number }>(
    `WITH thread AS (SELECT id FROM chat_threads WHERE id = $1 AND user_id = $2 FOR UPDATE),
     gone AS (DELETE FROM chat_messages WHERE thread_id IN (SELECT id FROM thread) RETURNING 1)
     SELECT (SELECT count(*)::int FROM gone) AS messages FROM thread`,
    [id, userId],
  );
  if (!rows[0]) return null;
  await q.query('DELETE FROM chat_threads WHERE id = $1 AND user_id = $2', [id, userId]);
  return rows[0].messages;
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
export async function appendToActiveThread(q: Queryable, m: { userId: string; projectId: string; role?: 'user' | 'tool'; content: string; metadata: Record<string, unknown> | null }): Promise<string> {
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
     INSERT INTO chat_messages (thread_id, role, content, metadata) SELECT id, $6, $3, $4 FROM thread RETURNING thread_id`,
    [m.userId, m.projectId, m.content, m.metadata === null ? null : JSON.stringify(m.metadata), ACTIVE_THREAD_HOURS, m.role ?? 'user'],
  );
  return rows[0]!.thread_id;
}

export interface NewMessage {
  /** Chosen by the caller, so a batch can tell which rows went in. */
  id: string;
  threadId: string;
  role: MessageRow['role'];
  content: string;
  metadata: Record<string, unknown> | null;
  /** Only into a thread used within this many hours (the active-thread rule); else not stored. */
  activeWithinHours?: number;
}

/**
 * Appends messages (content already redacted), in the given order, to existing threads and marks
 * those as just used, in one statement. Answers the ids stored: a message whose thread is gone, or
 * idle for longer than its `activeWithinHours`, is not.
 */
export async function appendMessages(q: Queryable, messages: NewMessage[]): Promise<Map<string, MessageRow>> {
  if (messages.length === 1) {
    // A lone message (every completion's, when one client chats): see migrations/0009.
    const m = messages[0]!;
    const rows = await q.query<MessageRow>('SELECT * FROM chat_append_message($1, $2, $3, $4, $5, $6)', [
      m.id,
      m.threadId,
      m.role,
      m.content,
      m.metadata === null ? null : JSON.stringify(m.metadata),
      m.activeWithinHours ?? null,
    ]);
    return new Map(rows.map((r) => [r.id, r]));
  }
  // The same rows chat_append_message would store for each, except that every message's thread is
  // judged as it was before the batch; in one statement.
  const rows = await q.query<MessageRow>(
    `WITH given AS (
       SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (id uuid, thread_id uuid, role text, content text, metadata jsonb, active_within_hours integer))
         WITH ORDINALITY AS m(id, thread_id, role, content, metadata, active_within_hours, n)
     ), allowed AS (
       -- Each message's own condition, on the thread as it was before this statement touched it.
       SELECT g.* FROM given g JOIN chat_threads t ON t.id = g.thread_id
       WHERE g.active_within_hours IS NULL OR t.updated_at > now() - make_interval(hours => g.active_within_hours)
     ), touched AS (
       UPDATE chat_threads t SET updated_at = now() WHERE t.id IN (SELECT thread_id FROM allowed) RETURNING t.id
     )
     INSERT INTO chat_messages (id, thread_id, role, content, metadata)
     SELECT id, thread_id, role, content, metadata FROM allowed WHERE thread_id IN (SELECT id FROM touched) ORDER BY n
     RETURNING *`,
    [JSON.stringify(messages.map((m) => ({ id: m.id, thread_id: m.threadId, role: m.role, content: m.content, metadata: m.metadata, active_within_hours: m.activeWithinHours ?? null })))],
  );
  return new Map(rows.map((r) => [r.id, r]));
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

/** The chat_audit_log columns a completion fills, keyed as jsonb_populate_record(set) reads them. */
const AUDIT_FIELDS = ['user_id', 'project_id', 'thread_id', 'outcome', 'error_code', 'model', 'node_id', 'stream', 'attempts', 'redaction_applied', 'redaction_kinds', 'duration_ms', 'request_id'];
const AUDIT_COLUMNS = AUDIT_FIELDS.join(', ');

function auditRecord(e: ChatAuditEntry) {
  return {
    user_id: e.userId,
    project_id: e.projectId,
    thread_id: e.threadId,
    outcome: e.outcome,
    error_code: e.errorCode,
    model: e.model,
    node_id: e.nodeId,
    stream: e.stream,
    attempts: e.attempts,
    redaction_applied: e.redactionApplied,
    redaction_kinds: e.redactionKinds,
    duration_ms: Math.round(e.durationMs),
    request_id: e.requestId,
  };
}

/** Rows of the chat audit log (one per completion request; no message content), in one statement. */
export async function appendChatAudits(q: Queryable, entries: ChatAuditEntry[]): Promise<void> {
  await q.query(`INSERT INTO chat_audit_log (${AUDIT_COLUMNS}) SELECT ${AUDIT_COLUMNS} FROM jsonb_populate_recordset(null::chat_audit_log, $1::jsonb)`, [
    JSON.stringify(entries.map(auditRecord)),
  ]);
}

/** A completion's answer (redacted like every message) and its audit row. */
export interface NewAnswer {
  id: string;
  threadId: string;
  content: string;
  metadata: Record<string, unknown>;
  audit: ChatAuditEntry;
}

/**
 * Stores answers with their audit rows in one statement, so a served completion costs one write
 * after its generation. An answer whose thread is gone (deleted meanwhile) is not stored, nor is
 * its audit row: the caller records the failure instead. Answers the ids stored.
 */
export async function appendAnswers(q: Queryable, answers: NewAnswer[]): Promise<Set<string>> {
  if (answers.length === 1) {
    // See migrations/0009.
    const a = answers[0]!;
    const rows = await q.query<{ stored: boolean }>('SELECT chat_append_answer($1, $2, $3, $4, $5) AS stored', [
      a.id,
      a.threadId,
      a.content,
      JSON.stringify(a.metadata),
      JSON.stringify(auditRecord(a.audit)),
    ]);
    return new Set(rows[0]?.stored ? [a.id] : []);
  }
  // Each answer as chat_append_answer would store it, in one statement.
  const rows = await q.query<{ id: string }>(
    `WITH given AS (
       SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (id uuid, thread_id uuid, content text, metadata jsonb)) WITH ORDINALITY AS m(id, thread_id, content, metadata, n)
     ), touched AS (
       UPDATE chat_threads t SET updated_at = now() WHERE t.id IN (SELECT thread_id FROM given) RETURNING t.id
     ), stored AS (
       INSERT INTO chat_messages (id, thread_id, role, content, metadata)
       SELECT id, thread_id, 'assistant', content, metadata FROM given WHERE thread_id IN (SELECT id FROM touched) ORDER BY n
       RETURNING id
     ), audited AS (
       INSERT INTO chat_audit_log (${AUDIT_COLUMNS})
       SELECT ${AUDIT_FIELDS.map((f) => `a.${f}`).join(', ')} FROM jsonb_populate_recordset(null::chat_audit_log, $2::jsonb) WITH ORDINALITY AS a
       JOIN given g ON g.n = a.ordinality WHERE g.id IN (SELECT id FROM stored)
     )
     SELECT id FROM stored`,
    [JSON.stringify(answers.map((a) => ({ id: a.id, thread_id: a.threadId, content: a.content, metadata: a.metadata }))), JSON.stringify(answers.map((a) => auditRecord(a.audit)))],
  );
  return new Set(rows.map((r) => r.id));
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
