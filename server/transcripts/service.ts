import type { Db } from '../db';
import { redactAll, redactJson } from '../redaction/redaction';
import type { Principal, RequestContext } from '../http/principal';
import { badRequest, notFound } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import { effectivePolicy } from '../retention/queries';
import type { Period } from '../retention/store';
import { findVisibleRun, taskOfWritableRun } from '../runs/queries';
import { findOwnSession } from '../sessions/queries';
import { findVisibleTask } from '../tasks/queries';
import { insertSegment, listSegments, projectOfRun, type SegmentKind, type SegmentOwner, type SegmentRow } from './store';

/** Largest segment content, in UTF-8 bytes. */
export const MAX_CONTENT_BYTES = 1024 * 1024;

export interface NewSegment {
  kind: SegmentKind;
  content: string;
  metadata?: Record<string, unknown>;
}

/** A stored segment with what redaction replaced in it. */
export interface AppendedSegment {
  segment: SegmentRow;
  retention: Period;
  redaction: { applied: boolean; kinds: string[]; count: number };
}

/**
 * Transcripts: derived artifacts (summaries, redacted views, audit extracts) of a session or a
 * run, not the raw chat store. Secrets in the content and in metadata strings are replaced by
 * SECRET_REDACTED before anything is stored, as in chat. A session's transcript is its owner's
 * alone; a run's is seen by whoever sees the run and written by whoever may write to it.
 * Anyone else gets 404.
 */
export class TranscriptService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
  ) {}

  async appendToSession(principal: Principal, sessionId: string, input: NewSegment): Promise<AppendedSegment> {
    const session = await findOwnSession(this.db, principal.userId, sessionId);
    if (!session) throw notFound('Session');
    return this.append(principal, { sessionId: session.id }, session.project_id, input);
  }

  async appendToRun(principal: Principal, runId: string, input: NewSegment, ctx: RequestContext): Promise<AppendedSegment> {
    const run = await findVisibleRun(this.db, principal.userId, runId);
    if (!run) throw notFound('Run');
    const task = (await findVisibleTask(this.db, principal.userId, taskOfWritableRun(run)))!;
    if (task.created_by !== principal.userId) await this.authz.require(principal, 'task.create', ctx, { projectId: task.project_id, resourceType: 'run', resourceId: run.id });
    return this.append(principal, { runId: run.id }, task.project_id, input);
  }

  async ofSession(principal: Principal, sessionId: string, page: { afterSeq?: number; limit: number }) {
    const session = await findOwnSession(this.db, principal.userId, sessionId);
    if (!session) throw notFound('Session');
    return this.list({ sessionId: session.id }, session.project_id, page);
  }

  async ofRun(principal: Principal, runId: string, page: { afterSeq?: number; limit: number }) {
    const run = await findVisibleRun(this.db, principal.userId, runId);
    if (!run) throw notFound('Run');
    return this.list({ runId: run.id }, await projectOfRun(this.db, run.id), page);
  }

  private async list(owner: SegmentOwner, projectId: string | null, page: { afterSeq?: number; limit: number }): Promise<{ segments: SegmentRow[]; more: boolean; retention: Period }> {
    const [found, policy] = await Promise.all([listSegments(this.db, owner, page), effectivePolicy(this.db, projectId)]);
    return { ...found, retention: policy.transcripts };
  }

  private async append(principal: Principal, owner: SegmentOwner, projectId: string | null, input: NewSegment): Promise<AppendedSegment> {
    if (Buffer.byteLength(input.content, 'utf8') > MAX_CONTENT_BYTES) throw badRequest(`content must be at most ${MAX_CONTENT_BYTES} bytes (UTF-8)`);
    const [content, meta] = await Promise.all([redactAll([input.content]), redactJson(input.metadata ?? null)]);
    const kinds = [...new Set([...content.kinds, ...meta.kinds])].sort();
    const count = content.count + meta.count;
    const [segment, policy] = await Promise.all([
      this.db.transaction((tx) => insertSegment(tx, owner, { kind: input.kind, content: content.texts[0]!, metadata: meta.value, redactionKinds: kinds, createdBy: principal.userId })),
      effectivePolicy(this.db, projectId),
    ]);
    return { segment, retention: policy.transcripts, redaction: { applied: count > 0, kinds, count } };
  }
}
