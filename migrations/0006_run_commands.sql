-- Durable commands on runs: a client's pause, resume, cancel or emit_event, accepted by a durable
-- insert and applied later, in seq order, by a runner in one of the gateway processes.

CREATE TABLE commands (
  seq          bigserial PRIMARY KEY,
  -- Chosen by the client; repeating it returns the first answer (per caller, not globally).
  command_id   text NOT NULL CHECK (length(command_id) BETWEEN 1 AND 200),
  subject_id   uuid NOT NULL REFERENCES users (id),
  run_id       uuid NOT NULL REFERENCES runs (id),
  type         text NOT NULL CHECK (type IN ('pause', 'resume', 'cancel', 'emit_event')),
  payload      jsonb,
  state        text NOT NULL DEFAULT 'accepted' CHECK (state IN ('accepted', 'applied', 'rejected')),
  reason       text,
  -- The runner applying it and until when that claim holds: a runner that dies mid-way lets the
  -- claim run out and another one applies the command.
  lease_holder text,
  lease_until  timestamptz,
  received_at  timestamptz NOT NULL DEFAULT now(),
  applied_at   timestamptz,
  UNIQUE (subject_id, command_id)
);
CREATE INDEX commands_accepted ON commands (run_id, seq) WHERE state = 'accepted';
CREATE INDEX commands_run ON commands (run_id, seq);
