-- The connector executor's key pairs (docs/decisions/0004-vault-format.md). The gateway seals
-- connector credentials to the newest public key that is not retired; the executor opens them
-- with the private half, which is stored only sealed by the vault under a key derived from the
-- master key, and opened only in the executor process.
--
-- kid: the public key's JWK thumbprint (RFC 7638), carried in each credential's JWE header.
-- retired_at: set when a newer pair replaces this one. A retired key still opens the credentials
-- sealed to it until the executor has rewrapped them to the new one.
CREATE TABLE connector_executor_keys (
  kid text PRIMARY KEY,
  public_jwk jsonb NOT NULL,
  private_key_sealed text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  retired_at timestamptz
);
