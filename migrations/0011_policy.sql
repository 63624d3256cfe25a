-- Access rules (Cedar policies, server/policy/) and the trail of every decision made with them.

-- One Cedar policy per row. `id` is the policy id decisions name: the rules shipped with CyNode
-- keep readable ids, rules admins write get a uuid. `version` counts writes, so an admin's edit
-- can say which version it changes.
CREATE TABLE policy_rules (
  id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
  name        text NOT NULL,
  description text NOT NULL DEFAULT '',
  text        text NOT NULL,
  enabled     boolean NOT NULL DEFAULT true,
  -- Shipped with CyNode (seeded below); still an ordinary rule that admins may change or delete.
  is_default  boolean NOT NULL DEFAULT false,
  version     integer NOT NULL DEFAULT 1,
  created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
  updated_by  uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every gateway reloads its rules when they change, from whichever process (server/db/memo.ts).
CREATE TRIGGER policy_rules_access_changed AFTER INSERT OR UPDATE OR DELETE ON policy_rules
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();

-- The rules a fresh install starts with: what CyNode allowed before it had rules. They must equal
-- DEFAULT_RULES in server/policy/default-rules.ts (tests/integration/policy.test.ts checks).
-- Seeded once, here: a default an admin deleted stays deleted.
INSERT INTO policy_rules (id, name, description, text, is_default) VALUES
  ('default-model-use', 'Everyone uses every model',
   'Every signed-in user (and an agent for its user) may use every model. Replace it, or add a forbid, to restrict a model.',
   $$permit (principal, action == Action::"model.use", resource is Model);$$, true),
  ('default-connector-owner', 'Owners invoke their connectors',
   'The user owning a connector instance may invoke its operations.',
   $$permit (principal is User, action == Action::"connector.invoke", resource is Operation)
when { resource.connector has ownerUser && resource.connector.ownerUser == principal };$$, true),
  ('default-connector-owner-group', 'Owning groups invoke their connectors',
   'Members of the group owning a connector instance may invoke its operations.',
   $$permit (principal is User, action == Action::"connector.invoke", resource is Operation)
when { resource.connector has ownerGroup && principal in resource.connector.ownerGroup };$$, true),
  ('default-connector-install', 'Users install connectors for themselves',
   'A user may install a connector instance they own themselves; installing for a group is left to admins.',
   $$permit (principal is User, action == Action::"connector.install", resource is Connector)
when { resource has ownerUser && resource.ownerUser == principal };$$, true),
  ('default-admin-connectors', 'Admins manage connectors',
   'Users with the admin role may install and manage every connector instance.',
   $$permit (principal is User in Role::"admin", action in [Action::"connector.manage", Action::"connector.install"], resource is Connector);$$, true);

-- One row per decision, allow and deny. No foreign keys: the trail outlives what it names.
-- subject_groups and subject_roles are what the decision saw (group ids, system role names);
-- rules are the ids of the rules that decided (the permits that allowed, or the forbids or
-- failing rules that denied); reason says why when no rule decided or something failed.
CREATE TABLE access_audit (
  seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id               uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  at               timestamptz NOT NULL DEFAULT now(),
  request_id       text,
  subject_user_id  uuid,
  subject_handle   text,
  subject_agent_id text,
  subject_agent_role text,
  subject_groups   jsonb NOT NULL DEFAULT '[]',
  subject_roles    jsonb NOT NULL DEFAULT '[]',
  action           text NOT NULL,
  resource_type    text NOT NULL,
  resource_id      text NOT NULL,
  decision         text NOT NULL CHECK (decision IN ('allow', 'deny')),
  rules            jsonb NOT NULL DEFAULT '[]',
  reason           text,
  task_id          text,
  project_id       text
);
CREATE INDEX access_audit_at ON access_audit (at);
CREATE INDEX access_audit_subject ON access_audit (subject_user_id, seq);
CREATE INDEX access_audit_task ON access_audit (task_id, seq) WHERE task_id IS NOT NULL;
