import type { Queryable } from '../db';
import { appendEvents } from '../runs/record';

export type SegmentKind = 'summary' | 'redacted_view' | 'audit';
export const SEGMENT_KINDS: readonly SegmentKind[] = ['summary', 'redacted_view', 'audit'];

/** What a segment belongs to: one session or one run. */
export type SegmentOwner = { sessionId: string } | { runId: string };

export interface SegmentRow {
  id: string;
  session_id: string | null;
  run_id: string | null;
  seq: number;
  kind: SegmentKind;
  /** Null once purged. */
  content: string | null;
  metadata: Record<string, unknown> | null;
  redaction_kinds: string[];
  created_by: string | null;
  created_at: Date;
  purged_at: Date | null;
}

const column = (o: SegmentOwner) => ('sessionId' in o ? 'session_id' : 'run_id');
const idOf = (o: SegmentOwner) => ('sessionId' in o ? o.sessionId : o.runId);

/**
 * A new segment numbered after its owner's last, in the caller's transaction. The owner's row is
 * locked first, so two writers to one session or run never take the same seq. A run's segment is
 * also announced in its ledger (ids and kind only, never the content).
 */
export async function insertSegment(
  q: Queryable,
  owner: SegmentOwner,
  s: { kind: SegmentKind; content: string; metadata: Record<string, unknown> | null; redactionKinds: string[]; createdBy: string },
): Promise<SegmentRow> {
  const table = 'sessionId' in owner ? 'sessions' : 'runs';
  await q.query(`SELECT 1 FROM ${table} WHERE id = $1 FOR UPDATE`, [idOf(owner)]);
  const col = column(owner);
  const rows = await q.query<SegmentRow>(
    `INSERT INTO transcript_segments (${col}, seq, kind, content, metadata, redaction_kinds, created_by)
     SELECT $1, COALESCE(max(seq), 0) + 1, $2, $3, $4, $5, $6 FROM transcript_segments WHERE ${col} = $1
     RETURNING *`,
    [idOf(owner), s.kind, s.content, s.metadata === null ? null : JSON.stringify(s.metadata), JSON.stringify(s.redactionKinds), s.createdBy],
  );
  const segment = { ...rows[0]!, seq: Number(rows[0]!.seq) };
  if ('runId' in owner) await appendEvents(q, owner.runId, [{ kind: 'transcript', data: { segment_id: segment.id, kind: segment.kind, seq: segment.seq } }]);
  return segment;
}

/** Segments after `afterSeq`, oldest first; one extra row tells whether another page exists. */
export async function listSegments(q: Queryable, owner: SegmentOwner, f: { afterSeq?: number; limit: number }): Promise<{ segments: SegmentRow[]; more: boolean }> {
  const rows = await q.query<SegmentRow>(`SELECT * FROM transcript_segments WHERE ${column(owner)} = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [idOf(owner), f.afterSeq ?? 0, f.limit + 1]);
  return { segments: rows.slice(0, f.limit).map((r) => ({ ...r, seq: Number(r.seq) })), more: rows.length > f.limit };
}

/** The project whose retention policy covers a run's segments: its task's. */
export async function projectOfRun(q: Queryable, runId: string): Promise<string | null> {
  const rows = await q.query<{ project_id: string | null }>('SELECT t.project_id FROM runs r JOIN tasks t ON t.id = r.task_id WHERE r.id = $1', [runId]);
  return rows[0]?.project_id ?? null;
}
