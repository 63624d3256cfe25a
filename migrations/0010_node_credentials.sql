-- A node's own credential, so that the join key lets a machine join as a new node but never act
-- as an existing one.
--
-- node_secret_sha256: the digest of the secret the node generated on its first start and keeps
-- in its state directory. Registering under a taken name needs that secret. NULL only for a node
-- registered by an earlier version: its next registration sets it (node tokens from before this
-- migration carry no registration id and are refused, so that happens at its next heartbeat).
--
-- registration_id: which registration the node's current node token belongs to. Every
-- registration replaces it (and the Worker API token), so a token from an earlier registration
-- can no longer fetch the config that carries the new Worker API token.
ALTER TABLE nodes ADD COLUMN node_secret_sha256 text;
ALTER TABLE nodes ADD COLUMN registration_id uuid;
