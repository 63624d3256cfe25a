import type { CredentialKind } from '../../api/types';

/**
 * The secret fields of each credential kind, as the gateway's credential schemas ask for them
 * (server/connectors/types/contract.ts; README "Connectors"; tests/unit/console-schema-form.test.ts
 * checks them against those schemas). The catalog names the kinds a type
 * accepts but not their shape, so the shapes are here; `satisfies` keeps the list complete.
 */
export const SECRET_FIELDS = {
  bearer_token: [{ name: 'token', label: 'Token', secret: true }],
  basic: [
    { name: 'username', label: 'User name', secret: false },
    { name: 'password', label: 'Password', secret: true },
  ],
  custom_header: [
    { name: 'name', label: 'Header name', secret: false },
    { name: 'value', label: 'Header value', secret: true },
  ],
  api_key: [{ name: 'key', label: 'API key', secret: true }],
  password: [{ name: 'password', label: 'Password', secret: true }],
} satisfies Record<CredentialKind, Array<{ name: string; label: string; secret: boolean }>>;
