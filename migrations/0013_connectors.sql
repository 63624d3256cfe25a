-- Connector instances, their credentials (ciphertext only) and their operation history.
--
-- The gateway never holds a credential's plaintext: `jwe` is sealed to the connector executor's
-- public key (docs/decisions/0004-vault-format.md) and bound to (instance, credential, version),
-- so a ciphertext copied into another row does not open. A revoked credential, or one of a
-- deleted instance, loses its ciphertext for good; its metadata row stays as the record.
CREATE TABLE connector_instances (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type            text NOT NULL,
  name            text NOT NULL,
  owner_user_id   uuid REFERENCES users (id),
  owner_group_id  uuid REFERENCES groups (id),
  project_id      uuid REFERENCES projects (id),
  -- Never a secret: secrets go into connector_credentials.
  config          jsonb NOT NULL,
  status          text NOT NULL DEFAULT 'provisioning'
                  CHECK (status IN ('provisioning', 'active', 'degraded', 'error', 'credential_expired', 'disabled')),
  last_error      text,
  created_by      uuid REFERENCES users (id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  deleted_at      timestamptz,
  CHECK ((owner_user_id IS NULL) <> (owner_group_id IS NULL))
);
CREATE INDEX connector_instances_owner_user ON connector_instances (owner_user_id) WHERE deleted_at IS NULL;
CREATE INDEX connector_instances_owner_group ON connector_instances (owner_group_id) WHERE deleted_at IS NULL;

CREATE TABLE connector_credentials (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  instance_id     uuid NOT NULL REFERENCES connector_instances (id),
  type            text NOT NULL CHECK (type IN ('password', 'bearer_token', 'basic', 'custom_header', 'api_key')),
  version         integer NOT NULL DEFAULT 1,
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'revoked')),
  jwe             text,
  key_id          text,
  created_by      uuid REFERENCES users (id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  rotated_at      timestamptz,
  expires_at      timestamptz,
  CHECK (status = 'revoked' OR jwe IS NOT NULL)
);
CREATE INDEX connector_credentials_instance ON connector_credentials (instance_id, created_at);

-- One row per invocation, refused ones included. Parameters are never stored; a result is kept
-- (redacted) only under an idempotency key, so that a replay answers what the first call did.
CREATE TABLE connector_operations (
  seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id              uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  request_id      text NOT NULL,
  subject_id      uuid NOT NULL,
  instance_id     uuid NOT NULL REFERENCES connector_instances (id),
  operation       text NOT NULL,
  decision        text NOT NULL CHECK (decision IN ('allow', 'deny')),
  -- The policy decision's row in access_audit.
  decision_audit_id uuid,
  outcome         text NOT NULL CHECK (outcome IN ('pending', 'success', 'failure')),
  failure_class   text,
  message         text,
  duration_ms     integer,
  provider_status integer,
  attempts        integer NOT NULL DEFAULT 0,
  credential_id   uuid,
  credential_version integer,
  task_id         uuid,
  idempotency_key text,
  result          jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
);
CREATE INDEX connector_operations_instance ON connector_operations (instance_id, seq);
CREATE UNIQUE INDEX connector_operations_idempotency ON connector_operations (instance_id, operation, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- Destinations an admin allowed connectors to reach beyond CYNODE_CONNECTOR_ALLOW; one row.
CREATE TABLE connector_settings (
  id              boolean PRIMARY KEY DEFAULT true CHECK (id),
  egress_allow    jsonb NOT NULL DEFAULT '[]',
  updated_by      uuid REFERENCES users (id),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO connector_settings (id) VALUES (true);
