-- Worker nodes, tasks and the job queue.

CREATE TABLE nodes (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  node_slug       text NOT NULL UNIQUE,
  display_name    text,
  labels          jsonb NOT NULL DEFAULT '[]',
  -- Observed liveness: `active` while capability reports (heartbeats) arrive, `stale` after
  -- they stop. Separate from what an admin decided (admin_state).
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stale')),
  -- `draining`: no new jobs, running ones finish. `disabled`: no new jobs at all.
  admin_state     text NOT NULL DEFAULT 'enabled' CHECK (admin_state IN ('enabled', 'disabled', 'draining')),
  worker_api_target_url text,
  -- Envelope-encrypted (vault); the bearer token the orchestrator presents to this node.
  worker_api_token_ciphertext text,
  config_version  text,                 -- ULID of the config the node was last given
  config_hash     text,                 -- hash of the desired state behind config_version
  config_ack_version text,
  config_ack_status text CHECK (config_ack_status IN ('applied', 'failed')),
  config_ack_error jsonb,
  config_ack_at   timestamptz,
  capability      jsonb,                -- the latest capability report, as sent
  capability_hash text,
  max_concurrency integer NOT NULL DEFAULT 1 CHECK (max_concurrency > 0),
  last_seen_at    timestamptz,
  registered_at   timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name            text NOT NULL,
  created_by      uuid NOT NULL REFERENCES users (id),
  project_id      uuid NOT NULL REFERENCES projects (id),
  input_mode      text NOT NULL CHECK (input_mode IN ('prompt', 'script', 'commands')),
  prompt          text NOT NULL,
  status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed', 'canceled', 'superseded')),
  -- true exactly when status is terminal; kept in the same write as status.
  closed          boolean NOT NULL DEFAULT false,
  summary         text,
  failure_reason  text,                 -- why a failed task failed, in words a user can act on
  metadata        jsonb,
  started_at      timestamptz,
  ended_at        timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (created_by, name),
  CHECK (closed = (status IN ('completed', 'failed', 'canceled', 'superseded')))
);
CREATE INDEX tasks_created_by ON tasks (created_by, created_at DESC);
CREATE INDEX tasks_project ON tasks (project_id, created_at DESC);
CREATE INDEX tasks_status ON tasks (status) WHERE NOT closed;

-- The queue: one row per unit of work a node runs. Claimed with FOR UPDATE SKIP LOCKED so that
-- several orchestrator processes on one PostgreSQL never hand out the same job twice.
CREATE TABLE jobs (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id         uuid NOT NULL REFERENCES tasks (id),
  kind            text NOT NULL CHECK (kind IN ('sandbox', 'inference')),
  status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed', 'canceled')),
  payload         jsonb NOT NULL,       -- the Worker API sandbox spec (image, command, env, timeout...)
  result          jsonb,                -- the Worker API result, as returned
  failure_code    text,                 -- node_lost, no_dispatchable_node, no_inference_path, worker_error...
  node_id         uuid REFERENCES nodes (id) ON DELETE SET NULL,
  attempt         integer NOT NULL DEFAULT 0,
  max_attempts    integer NOT NULL DEFAULT 3,
  -- A lease names one attempt on one node; results of an older lease are ignored.
  lease_id        uuid,
  lease_expires_at timestamptz,
  -- Which orchestrator process holds the open jobs:run call, and until when (renewed while it
  -- waits). A running job whose holder stopped renewing is re-attached by another dispatcher.
  held_by         text,
  held_until      timestamptz,
  not_before      timestamptz NOT NULL DEFAULT now(),
  attempts_log    jsonb NOT NULL DEFAULT '[]', -- [{attempt, node_id, outcome, at}]
  started_at      timestamptz,
  ended_at        timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_task ON jobs (task_id);
CREATE INDEX jobs_queued ON jobs (not_before, created_at) WHERE status = 'queued';
CREATE INDEX jobs_running_node ON jobs (node_id) WHERE status = 'running';
