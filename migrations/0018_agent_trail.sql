-- The project-manager agent's trail and approvals (issue 16, README "The project-manager agent").

-- An agent turn's steps are runs of the turn's session with no task: a run is now of a kind.
-- `task` runs keep their task; `agent_step` runs have none, and belong to the user who made them
-- (created_by), in one of that user's sessions. Nobody else sees them.
ALTER TABLE runs ADD COLUMN kind text NOT NULL DEFAULT 'task' CHECK (kind IN ('task', 'agent_step'));
ALTER TABLE runs ALTER COLUMN task_id DROP NOT NULL;
ALTER TABLE runs ADD CONSTRAINT runs_task_or_agent_step CHECK (
  (kind = 'task' AND task_id IS NOT NULL)
  OR (kind = 'agent_step' AND task_id IS NULL AND session_id IS NOT NULL AND created_by IS NOT NULL)
);

-- Tool calls an agent turn held for the user's approval (agents.project_manager.approval =
-- mutating). The arguments are the user's own request, stored redacted; the next message in the
-- thread (or POST /v1/agent/approvals/{id}) decides them.
CREATE TABLE agent_approvals (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     uuid NOT NULL REFERENCES users (id),
  thread_id   uuid NOT NULL,
  session_id  uuid REFERENCES sessions (id),
  project_id  uuid REFERENCES projects (id),
  tool_name   text NOT NULL,
  args        jsonb NOT NULL,
  status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
  -- What running the approved call gave: {ok, result|error}, so the turn that continues can use it.
  outcome     jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  decided_at  timestamptz,
  decided_by  uuid REFERENCES users (id),
  -- When the decision (and the outcome) went back to the agent, in the thread's next turn.
  reported_at timestamptz
);
CREATE INDEX agent_approvals_user ON agent_approvals (user_id, status, created_at DESC);
CREATE INDEX agent_approvals_thread ON agent_approvals (thread_id, status);
