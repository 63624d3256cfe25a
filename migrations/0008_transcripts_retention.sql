-- Transcripts (derived, redacted artifacts of sessions and runs) and retention of run logs and
-- transcripts.

-- A segment belongs to exactly one session or one run; `seq` is dense per owner from 1. Only the
-- redacted text is ever stored. A purged segment stays as a tombstone (content and metadata
-- cleared, purged_at set) so its id, its seq and the ledger events naming it keep their meaning.
CREATE TABLE transcript_segments (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id       uuid REFERENCES sessions (id),
  run_id           uuid REFERENCES runs (id),
  seq              bigint NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('summary', 'redacted_view', 'audit')),
  content          text,
  metadata         jsonb,
  redaction_kinds  jsonb NOT NULL DEFAULT '[]',
  created_by       uuid REFERENCES users (id),
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  purged_at        timestamptz,
  CHECK ((session_id IS NULL) <> (run_id IS NULL))
);
CREATE UNIQUE INDEX transcript_segments_session_seq ON transcript_segments (session_id, seq) WHERE session_id IS NOT NULL;
CREATE UNIQUE INDEX transcript_segments_run_seq ON transcript_segments (run_id, seq) WHERE run_id IS NOT NULL;
CREATE INDEX transcript_segments_expiring ON transcript_segments (created_at) WHERE purged_at IS NULL;

-- One system row (project_id NULL) and at most one per project. A day count of NULL keeps
-- forever; a project field whose `*_set` is false is not set and inherits the system's.
CREATE TABLE retention_policies (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id        uuid REFERENCES projects (id),
  run_logs_days     integer CHECK (run_logs_days >= 1),
  run_logs_set      boolean NOT NULL DEFAULT true,
  transcripts_days  integer CHECK (transcripts_days >= 1),
  transcripts_set   boolean NOT NULL DEFAULT true,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  updated_by        uuid REFERENCES users (id)
);
CREATE UNIQUE INDEX retention_policies_scope ON retention_policies (COALESCE(project_id, '00000000-0000-0000-0000-000000000000'::uuid));
-- Until an admin sets one, everything is kept.
INSERT INTO retention_policies (project_id) VALUES (NULL);

-- What each purge removed, per run and per session, with the policy it applied. No foreign keys:
-- like the audit trail, this record outlives what it names.
CREATE TABLE retention_purges (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  trigger         text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
  requested_by    uuid,
  started_at      timestamptz NOT NULL,
  finished_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  run_log_lines   bigint NOT NULL,
  transcript_segments bigint NOT NULL,
  details         jsonb NOT NULL
);
CREATE INDEX retention_purges_finished ON retention_purges (finished_at DESC);

-- The purge looks for old, not yet purged log lines across all runs.
CREATE INDEX run_events_log_time ON run_events (created_at) WHERE kind = 'log';
