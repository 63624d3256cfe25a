-- Agent-scoped tokens (spec connectors-ledger §2.3) and the role allowlists agents are held to
-- (§2.4). An agent never holds its user's credential: it acts at /mcp with a short-lived token
-- bound to the user, its role and, optionally, a task, session and project (server/agents/).

-- One row per token, so tokens can be listed and revoked. The token itself (a signed JWT) is
-- never stored: `id` is its `jti`, and the Agent entity id the access rules see. task, session
-- and project have no foreign key: a token outlives nothing, and its row must not hold back the
-- retention of what it named.
CREATE TABLE agent_tokens (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     uuid NOT NULL REFERENCES users (id),
  role        text NOT NULL,
  task_id     uuid,
  session_id  uuid,
  project_id  uuid,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz,
  created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
  CHECK (role IN ('project_manager', 'project_analyst', 'worker')),
  CHECK (expires_at > created_at)
);
CREATE INDEX agent_tokens_user ON agent_tokens (user_id, created_at DESC);
CREATE INDEX agent_tokens_expires ON agent_tokens (expires_at);

-- Every gateway forgets the tokens it verified when one is revoked, from whichever process
-- (server/db/memo.ts); users being disabled already announce themselves.
CREATE TRIGGER agent_tokens_access_changed AFTER UPDATE OF revoked_at, expires_at OR DELETE ON agent_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();

-- The role allowlists. They must equal the agent rules of DEFAULT_RULES in
-- server/policy/default-rules.ts (tests/integration/policy.test.ts checks). An agent's request is
-- decided as its user too (0015's default-tool-call and any forbid), so these only ever narrow
-- what the user may do.
INSERT INTO policy_rules (id, name, description, text, is_default) VALUES
  ('default-agent-project-manager', 'Project manager agents call every tool',
   'An agent in the project_manager role may call every MCP tool its user may call.',
   $$permit (principal is Agent in Role::"project_manager", action == Action::"tool.call", resource is Tool);$$, true),
  ('default-agent-project-analyst', 'Project analyst agents call read-only tools',
   'An agent in the project_analyst role may call the MCP tools that change nothing, when its user may.',
   $$permit (principal is Agent in Role::"project_analyst", action == Action::"tool.call", resource is Tool)
when { resource.readOnly };$$, true),
  ('default-agent-worker', 'Worker agents read their task',
   'A sandbox worker agent may read its task, its result and its runs; that it is its own task is checked at /mcp.',
   $$permit (principal is Agent in Role::"worker", action == Action::"tool.call", resource is Tool)
when { [Tool::"task.get", Tool::"task.result", Tool::"run.get", Tool::"run.events", Tool::"run.logs"].contains(resource) };$$, true);
