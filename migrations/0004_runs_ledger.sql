-- Sessions, runs and the run event ledger.

-- A user-facing container grouping runs (and later transcripts); sessions nest. Never an
-- authorization boundary: who may see a run is decided by its task.
CREATE TABLE sessions (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  parent_session_id uuid REFERENCES sessions (id),
  user_id           uuid NOT NULL REFERENCES users (id),
  project_id        uuid REFERENCES projects (id),
  title             text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user ON sessions (user_id, created_at DESC);
CREATE INDEX sessions_parent ON sessions (parent_session_id);

-- One execution trace: a dispatched job, or a run a client records itself. Always tied to a task.
CREATE TABLE runs (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id         uuid NOT NULL REFERENCES tasks (id),
  job_id          uuid REFERENCES jobs (id),
  session_id      uuid REFERENCES sessions (id),
  parent_run_id   uuid REFERENCES runs (id),
  created_by      uuid REFERENCES users (id),
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'canceled')),
  paused          boolean NOT NULL DEFAULT false,
  pause_reason    text,
  -- The seq of the run's newest event. Bumping it locks the row, which serialises appends per run
  -- and keeps the sequence dense without a separate counter table.
  last_seq        bigint NOT NULL DEFAULT 0,
  error           text,
  metadata        jsonb,
  started_at      timestamptz,
  ended_at        timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_task ON runs (task_id);
CREATE INDEX runs_job ON runs (job_id);
CREATE INDEX runs_session ON runs (session_id);
CREATE INDEX runs_parent ON runs (parent_run_id);
CREATE INDEX runs_status ON runs (status, updated_at DESC);
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);

-- The ledger: append-only, a dense 1-based seq per run. Clients replay with `after=<seq>`.
CREATE TABLE run_events (
  run_id          uuid NOT NULL REFERENCES runs (id),
  seq             bigint NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('status', 'log', 'event', 'command', 'process', 'transcript')),
  stream          text CHECK (stream IN ('stdout', 'stderr')),
  message         text,
  data            jsonb,
  -- A writer that may send the same event twice (a re-attached node call resending log lines)
  -- names it; the second copy is dropped.
  idempotency_key text,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (run_id, seq)
);
CREATE UNIQUE INDEX run_events_idempotency ON run_events (run_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX run_events_time ON run_events (run_id, created_at);

ALTER TABLE tasks ADD COLUMN session_id uuid REFERENCES sessions (id);
CREATE INDEX tasks_session ON tasks (session_id) WHERE session_id IS NOT NULL;
