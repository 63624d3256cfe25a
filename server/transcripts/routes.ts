import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Nullable, PageQuery, Strict, Timestamp, Uuid, decodeCursor, encodeCursor, errors } from '../http/schemas';
import type { Period } from '../retention/store';
import { MAX_CONTENT_BYTES, type AppendedSegment, type TranscriptService } from './service';
import type { SegmentRow } from './store';

const SegmentKindEnum = Type.Union([Type.Literal('summary'), Type.Literal('redacted_view'), Type.Literal('audit')]);

const RetentionPolicy = Type.Object(
  {
    days: Nullable(Type.Integer({ description: 'Days kept; null: forever' })),
    source: Type.Union([Type.Literal('project'), Type.Literal('system')]),
  },
  { description: 'The transcript period in effect now (the project policy if it sets one, else the system policy)' },
);

const Segment = Type.Object({
  id: Uuid,
  session_id: Nullable(Uuid),
  run_id: Nullable(Uuid),
  seq: Type.Integer({ description: 'Dense per session or run, from 1' }),
  kind: SegmentKindEnum,
  content: Nullable(Type.String({ description: 'Redacted; null once purged' })),
  metadata: Nullable(Type.Record(Type.String(), Type.Unknown())),
  created_at: Timestamp,
  expires_at: Nullable(Timestamp),
  retention_policy: RetentionPolicy,
  purged_at: Nullable(Timestamp),
});

const Created = Type.Intersect([
  Segment,
  Type.Object({
    redaction_applied: Type.Boolean(),
    redaction_kinds: Type.Array(Type.String({ description: 'api_key, token, password or private_key' })),
  }),
]);

const Page = Type.Object({ segments: Type.Array(Segment), next_cursor: Nullable(Type.String()) });

const NewSegmentBody = Strict({
  kind: SegmentKindEnum,
  content: Type.String({ maxLength: MAX_CONTENT_BYTES, description: `At most ${MAX_CONTENT_BYTES} bytes; secrets are replaced by SECRET_REDACTED` }),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Free-form JSON object; its strings are redacted too' })),
});

const DAY_MS = 86_400_000;

const segmentView = (s: SegmentRow, retention: Period) => ({
  id: s.id,
  session_id: s.session_id,
  run_id: s.run_id,
  seq: s.seq,
  kind: s.kind,
  content: s.content,
  metadata: s.metadata,
  created_at: s.created_at.toISOString(),
  expires_at: retention.days === null ? null : new Date(s.created_at.getTime() + retention.days * DAY_MS).toISOString(),
  retention_policy: retention,
  purged_at: s.purged_at ? s.purged_at.toISOString() : null,
});

const createdView = (a: AppendedSegment) => ({ ...segmentView(a.segment, a.retention), redaction_applied: a.redaction.applied, redaction_kinds: a.redaction.kinds });

const isSeqCursor = (v: unknown): v is { seq: number } => typeof v === 'object' && v !== null && Number.isSafeInteger((v as { seq: unknown }).seq);

function page(p: { segments: SegmentRow[]; more: boolean; retention: Period }) {
  const last = p.segments.at(-1);
  return { segments: p.segments.map((s) => segmentView(s, p.retention)), next_cursor: p.more && last ? encodeCursor({ seq: last.seq }) : null };
}

/** Transcript segments of sessions and runs: append (redacted) and page through in seq order. */
export function transcriptRoutes(app: HttpServer, transcripts: TranscriptService): void {
  const pageQuery = Strict(PageQuery);

  app.post(
    '/v1/sessions/:id/transcripts',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Add a transcript segment to one of your sessions (secrets redacted before it is stored)',
        params: IdParams,
        body: NewSegmentBody,
        response: { 201: Created, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const a = await transcripts.appendToSession(request.principal!, request.params.id, request.body);
      reply.code(201);
      return createdView(a);
    },
  );

  app.get(
    '/v1/sessions/:id/transcripts',
    {
      schema: { tags: ['sessions'], summary: "A session's transcript segments, oldest first", params: IdParams, querystring: pageQuery, response: { 200: Page, ...errors(400, 401, 404) } },
    },
    async (request) => {
      const after = decodeCursor(request.query.cursor, isSeqCursor)?.seq;
      return page(await transcripts.ofSession(request.principal!, request.params.id, { afterSeq: after, limit: request.query.limit }));
    },
  );

  app.post(
    '/v1/runs/:id/transcripts',
    {
      schema: {
        tags: ['runs'],
        summary: 'Add a transcript segment to a run (secrets redacted; announced in the run ledger as a `transcript` event)',
        params: IdParams,
        body: NewSegmentBody,
        response: { 201: Created, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const a = await transcripts.appendToRun(request.principal!, request.params.id, request.body, requestContext(request));
      reply.code(201);
      return createdView(a);
    },
  );

  app.get(
    '/v1/runs/:id/transcripts',
    {
      schema: { tags: ['runs'], summary: "A run's transcript segments, oldest first", params: IdParams, querystring: pageQuery, response: { 200: Page, ...errors(400, 401, 404) } },
    },
    async (request) => {
      const after = decodeCursor(request.query.cursor, isSeqCursor)?.seq;
      return page(await transcripts.ofRun(request.principal!, request.params.id, { afterSeq: after, limit: request.query.limit }));
    },
  );
}
