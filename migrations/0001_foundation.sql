-- Foundation: identity, sessions, API keys, projects, groups, RBAC and the audit trail.
-- Never edit this file once released; add a new numbered migration instead.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  handle        text NOT NULL UNIQUE,
  email         text UNIQUE,
  display_name  text,
  is_active     boolean NOT NULL DEFAULT true,
  -- The reserved `system` user attributes actions nobody typed; it never signs in.
  is_system     boolean NOT NULL DEFAULT false,
  external_source text,
  external_id   text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_is_active ON users (is_active);

CREATE TABLE password_credentials (
  user_id       uuid PRIMARY KEY REFERENCES users (id),
  password_hash text NOT NULL,          -- PHC string, argon2id
  hash_alg      text NOT NULL DEFAULT 'argon2id',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A sign-in. Access tokens carry its id and are honoured only while it is active, so logout,
-- revocation and disabling a user take effect on the very next request.
CREATE TABLE auth_sessions (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id       uuid NOT NULL REFERENCES users (id),
  is_active     boolean NOT NULL DEFAULT true,
  expires_at    timestamptz NOT NULL,
  revoked_at    timestamptz,
  revoked_reason text,
  ip            text,
  user_agent    text,
  last_used_at  timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_sessions_user_active ON auth_sessions (user_id) WHERE is_active;

-- Every refresh token a session was ever given (hashed). A token already rotated that comes
-- back means it leaked: the whole session is revoked.
CREATE TABLE refresh_tokens (
  token_hash    text PRIMARY KEY,         -- sha256 hex of the opaque token
  session_id    uuid NOT NULL REFERENCES auth_sessions (id),
  issued_at     timestamptz NOT NULL DEFAULT now(),
  rotated_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Personal API keys for LAN clients (OpenAI SDK, scripts). Only the hash is stored.
CREATE TABLE api_keys (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id       uuid NOT NULL REFERENCES users (id),
  name          text NOT NULL,
  key_hash      text NOT NULL UNIQUE,     -- sha256 hex of the key
  key_prefix    text NOT NULL,            -- first characters, so a user can tell keys apart
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE projects (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug          text NOT NULL UNIQUE,
  display_name  text NOT NULL,
  description   text,
  is_active     boolean NOT NULL DEFAULT true,
  -- Set on exactly one project per user: the one work goes to when no project is named.
  default_for_user_id uuid UNIQUE REFERENCES users (id),
  created_by    uuid REFERENCES users (id),
  updated_by    uuid REFERENCES users (id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_is_active ON projects (is_active);

CREATE TABLE groups (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug          text NOT NULL UNIQUE,
  display_name  text NOT NULL,
  is_active     boolean NOT NULL DEFAULT true,
  external_source text,
  external_id   text,
  managed_by    text NOT NULL DEFAULT 'local',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  updated_by    uuid REFERENCES users (id)
);

CREATE TABLE group_memberships (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  group_id      uuid NOT NULL REFERENCES groups (id),
  user_id       uuid NOT NULL REFERENCES users (id),
  is_active     boolean NOT NULL DEFAULT true,
  managed_by    text NOT NULL DEFAULT 'local',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  updated_by    uuid REFERENCES users (id),
  UNIQUE (group_id, user_id)
);
CREATE INDEX group_memberships_user ON group_memberships (user_id) WHERE is_active;

CREATE TABLE roles (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text NOT NULL UNIQUE,
  description   text NOT NULL,
  scope_type    text NOT NULL CHECK (scope_type IN ('system', 'project')),
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- The role map: which actions a role grants. `*` grants every action.
CREATE TABLE role_permissions (
  role_id       uuid NOT NULL REFERENCES roles (id),
  action        text NOT NULL,
  PRIMARY KEY (role_id, action)
);

CREATE TABLE role_bindings (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subject_type  text NOT NULL CHECK (subject_type IN ('user', 'group')),
  subject_id    uuid NOT NULL,
  role_id       uuid NOT NULL REFERENCES roles (id),
  scope_type    text NOT NULL CHECK (scope_type IN ('system', 'project')),
  scope_id      uuid REFERENCES projects (id),
  is_active     boolean NOT NULL DEFAULT true,
  managed_by    text NOT NULL DEFAULT 'local',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  updated_by    uuid REFERENCES users (id),
  CHECK ((scope_type = 'system') = (scope_id IS NULL))
);
CREATE UNIQUE INDEX role_bindings_one_active
  ON role_bindings (subject_type, subject_id, role_id, scope_type, COALESCE(scope_id, '00000000-0000-0000-0000-000000000000'::uuid))
  WHERE is_active;
CREATE INDEX role_bindings_subject ON role_bindings (subject_type, subject_id) WHERE is_active;
CREATE INDEX role_bindings_scope ON role_bindings (scope_type, scope_id) WHERE is_active;

INSERT INTO roles (name, description, scope_type) VALUES
  ('admin',    'Administers the whole installation.', 'system'),
  ('operator', 'Operates nodes and reads the audit trail.', 'system'),
  ('owner',    'Owns a project: everything in it, including who else has access.', 'project'),
  ('member',   'Works in a project: reads it, creates and follows tasks, chats in it.', 'project'),
  ('viewer',   'Reads a project and its tasks.', 'project');

INSERT INTO role_permissions (role_id, action)
SELECT r.id, a.action FROM roles r JOIN (VALUES
  ('admin', '*'),
  ('operator', 'nodes.read'), ('operator', 'nodes.manage'), ('operator', 'audit.read'), ('operator', 'settings.read'),
  ('owner', 'project.read'), ('owner', 'project.update'), ('owner', 'project.delete'), ('owner', 'project.rbac.manage'),
  ('owner', 'task.create'), ('owner', 'task.read'), ('owner', 'task.cancel'), ('owner', 'chat.use'),
  ('member', 'project.read'), ('member', 'task.create'), ('member', 'task.read'), ('member', 'chat.use'),
  ('viewer', 'project.read'), ('viewer', 'task.read')
) AS a (role, action) ON a.role = r.name;

-- One append-only trail for auth events, admin changes and access decisions. No foreign keys:
-- an audit row outlives whatever it names.
CREATE TABLE audit_events (
  seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id            uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  ts            timestamptz NOT NULL DEFAULT now(),
  category      text NOT NULL CHECK (category IN ('auth', 'admin', 'access')),
  action        text NOT NULL,
  outcome       text NOT NULL CHECK (outcome IN ('success', 'failure', 'allow', 'deny')),
  actor_id      uuid,
  actor_handle  text,
  resource_type text,
  resource_id   text,
  scope_type    text,
  scope_id      uuid,
  request_id    text,
  ip            text,
  user_agent    text,
  reason        text,
  details       jsonb
);
CREATE INDEX audit_events_ts ON audit_events (ts);
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_resource ON audit_events (resource_type, resource_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Installation-wide values (first-run markers, the node join PSK later, retention defaults).
CREATE TABLE system_settings (
  key           text PRIMARY KEY,
  value         jsonb NOT NULL,
  version       integer NOT NULL DEFAULT 1,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  updated_by    uuid REFERENCES users (id)
);
