-- Chat (OpenAI-compatible endpoint, threads). Message content is always the redacted text;
-- the chat audit log never holds content.

CREATE TABLE chat_threads (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     uuid NOT NULL REFERENCES users (id),
  project_id  uuid REFERENCES projects (id),
  title       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- The active thread of (user, project): the most recently updated one.
CREATE INDEX chat_threads_user_project ON chat_threads (user_id, project_id, updated_at DESC);
CREATE INDEX chat_threads_project ON chat_threads (project_id, updated_at DESC);

-- Append-only.
CREATE TABLE chat_messages (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  thread_id   uuid NOT NULL REFERENCES chat_threads (id),
  role        text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
  content     text NOT NULL,          -- redacted
  metadata    jsonb,                  -- {model, node_id, redaction_kinds, ...}; never a secret
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX chat_messages_thread ON chat_messages (thread_id, created_at, id);

-- One row per completion request. No message content, ever.
CREATE TABLE chat_audit_log (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  created_at        timestamptz NOT NULL DEFAULT now(),
  user_id           uuid REFERENCES users (id) ON DELETE SET NULL,
  project_id        uuid REFERENCES projects (id) ON DELETE SET NULL,
  thread_id         uuid,
  outcome           text NOT NULL CHECK (outcome IN ('success', 'error', 'canceled', 'timeout')),
  error_code        text,
  model             text,
  node_id           uuid,             -- the inference path chosen (no FK: audit outlives nodes)
  stream            boolean NOT NULL DEFAULT false,
  attempts          integer NOT NULL DEFAULT 0,
  redaction_applied boolean NOT NULL DEFAULT false,
  redaction_kinds   jsonb,
  duration_ms       integer,
  request_id        text
);
CREATE INDEX chat_audit_log_created ON chat_audit_log (created_at DESC);
CREATE INDEX chat_audit_log_user ON chat_audit_log (user_id, created_at DESC);
