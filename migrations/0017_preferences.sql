-- Preferences (spec gateway.md §1.8): one JSON value per key at system, group, user, project or
-- task scope, folded by precedence (server/preferences/). Versioned for optimistic writes.

-- scope_id names the group, user, project or task; system preferences have none. No foreign key:
-- the scope's object is checked by the service, and a preference must not hold back a user's,
-- project's or task's retention.
CREATE TABLE preferences (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  scope_type  text NOT NULL CHECK (scope_type IN ('system', 'group', 'user', 'project', 'task')),
  scope_id    uuid,
  key         text NOT NULL,
  value       jsonb NOT NULL,
  value_type  text NOT NULL CHECK (value_type IN ('string', 'number', 'boolean', 'object', 'array', 'null')),
  version     integer NOT NULL CHECK (version >= 1),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  uuid REFERENCES users (id) ON DELETE SET NULL,
  CHECK ((scope_type = 'system') = (scope_id IS NULL))
);
-- One value per key and scope; system rows have a null scope_id, which a plain unique index
-- would let repeat.
CREATE UNIQUE INDEX preferences_scope_key ON preferences (scope_type, COALESCE(scope_id, '00000000-0000-0000-0000-000000000000'::uuid), key);

-- Every create, update and delete, with its reason. Versions only, never values: a value may be
-- personal, and the trail must stay safe to show to whoever reads it.
CREATE TABLE preference_audit_log (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  created_at    timestamptz NOT NULL DEFAULT now(),
  action        text NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
  scope_type    text NOT NULL,
  scope_id      uuid,
  key           text NOT NULL,
  old_version   integer,
  new_version   integer,
  changed_by    uuid REFERENCES users (id) ON DELETE SET NULL,
  changed_by_handle text,
  via           text,
  reason        text,
  request_id    text
);
CREATE INDEX preference_audit_log_time ON preference_audit_log (created_at DESC, id DESC);
CREATE INDEX preference_audit_log_scope ON preference_audit_log (scope_type, scope_id, key);
