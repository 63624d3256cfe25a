-- CyNode as an MCP server (/mcp, server/mcp/): the rule that lets users call its tools, and the
-- trail of every tool call (spec connectors-ledger §2.6).

-- Every tool for users; the services behind each tool still check who may do what. Must equal
-- `default-tool-call` in server/policy/default-rules.ts (tests/integration/policy.test.ts checks).
INSERT INTO policy_rules (id, name, description, text, is_default) VALUES
  ('default-tool-call', 'Users call every MCP tool',
   'Every signed-in user may list and call every tool of the MCP server at /mcp; each tool is checked again by the service it calls. Add a forbid to restrict a tool.',
   $$permit (principal is User, action == Action::"tool.call", resource is Tool);$$, true)
ON CONFLICT (id) DO NOTHING;

-- One row per tools/call, allowed or denied, succeeded or failed. Arguments and results are never
-- stored: `args_shape` holds the argument names and their JSON types only. No foreign keys: the
-- trail outlives what it names.
CREATE TABLE tool_call_audit (
  seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id               uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  created_at       timestamptz NOT NULL DEFAULT now(),
  request_id       text,
  task_id          text,
  project_id       text,
  run_id           text,
  subject_type     text NOT NULL CHECK (subject_type IN ('user', 'agent')),
  user_id          uuid,
  agent_id         text,
  agent_role       text,
  tool_name        text NOT NULL,
  decision         text NOT NULL CHECK (decision IN ('allow', 'deny')),
  status           text NOT NULL CHECK (status IN ('success', 'error')),
  duration_ms      integer NOT NULL,
  error_type       text,
  -- The access_audit row of the policy decision, when one was made and written.
  policy_audit_id  uuid,
  args_shape       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX tool_call_audit_created_at ON tool_call_audit (created_at);
CREATE INDEX tool_call_audit_task ON tool_call_audit (task_id, seq) WHERE task_id IS NOT NULL;
CREATE INDEX tool_call_audit_tool ON tool_call_audit (tool_name, seq);
