-- Events out through connectors (REQ-USRGWY-0123, spec connectors-ledger §1.11): a user subscribes
-- one of their connector instances to events, and each event is delivered by running one of the
-- instance's operations as that user (policy and history apply as for any call). The row holds
-- no secret: `params` is a template of the operation's parameters (a recipient, a channel, a
-- path), the message is filled in at delivery, and the instance's credential stays in the vault.
CREATE TABLE connector_subscriptions (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  instance_id     uuid NOT NULL REFERENCES connector_instances (id),
  owner_user_id   uuid NOT NULL REFERENCES users (id),
  -- Names from a fixed set: task.completed, task.failed, node.lost.
  events          jsonb NOT NULL,
  operation       text NOT NULL,
  params          jsonb NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (jsonb_typeof(events) = 'array' AND jsonb_array_length(events) > 0)
);
CREATE INDEX connector_subscriptions_instance ON connector_subscriptions (instance_id, created_at);
CREATE INDEX connector_subscriptions_owner ON connector_subscriptions (owner_user_id);
