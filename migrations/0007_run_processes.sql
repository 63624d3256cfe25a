-- Background processes started inside a run's sandbox (a docker exec in the container of the
-- run's running job). Tied to the run, its task and its job for audit; they end with the sandbox.

CREATE TABLE run_processes (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  run_id      uuid NOT NULL REFERENCES runs (id),
  task_id     uuid NOT NULL REFERENCES tasks (id),
  job_id      uuid NOT NULL REFERENCES jobs (id),
  -- No foreign key: a node deleted later must not take the audit trail with it.
  node_id     uuid NOT NULL,
  command     jsonb NOT NULL,
  -- Only the names: the values may be secrets and never reach the database.
  env_names   jsonb NOT NULL DEFAULT '[]',
  status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'exited', 'terminated', 'failed')),
  exit_code   integer,
  -- Why a process failed or was ended by something other than a terminate (e.g. its sandbox ended).
  reason      text,
  started_by  uuid REFERENCES users (id),
  started_at  timestamptz NOT NULL DEFAULT now(),
  ended_at    timestamptz,
  -- Final output, kept once the process ended (while it runs, output is read from the node).
  stdout      text,
  stderr      text,
  truncated   boolean NOT NULL DEFAULT false
);
CREATE INDEX run_processes_run ON run_processes (run_id, started_at, id);
CREATE INDEX run_processes_running ON run_processes (job_id) WHERE status = 'running';
