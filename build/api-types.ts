// Renderer API types, generated from the gateway's own OpenAPI document so the console and the
// gateway cannot drift apart. `npm run api:types` rewrites renderer/src/api/schema.d.ts (through
// vitest: the server reads its migrations with Vite's import.meta.glob);
// tests/unit/api-types.test.ts fails when the committed file is stale.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import openapiTS, { astToString } from 'openapi-typescript';
import { loadConfig } from '../server/config/config';
import { startCynode } from '../server/app';

export const SCHEMA_FILE = 'renderer/src/api/schema.d.ts';
export const REGENERATE_COMMAND = 'npm run api:types';

const HEADER = `// Generated from the gateway's GET /v1/openapi.json by \`${REGENERATE_COMMAND}\`; do not edit.\n\n`;

/** The gateway's OpenAPI document, read from a gateway started on a throwaway in-process database. */
export async function gatewayOpenApi(): Promise<Record<string, unknown>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cynode-openapi-'));
  const config = loadConfig(
    {},
    { dataDir, host: '127.0.0.1', gatewayPort: 0, controlPort: 0, adminPassword: 'openapi-generator-1', logLevel: 'silent', embeddedNode: false },
  );
  const cynode = await startCynode(config);
  try {
    const login = await fetch(`${cynode.gatewayUrl}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ handle: 'admin', password: config.adminPassword }),
    });
    const { access_token } = (await login.json()) as { access_token: string };
    const res = await fetch(`${cynode.gatewayUrl}/v1/openapi.json`, { headers: { authorization: `Bearer ${access_token}` } });
    if (!res.ok) throw new Error(`GET /v1/openapi.json answered ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  } finally {
    await cynode.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The text of renderer/src/api/schema.d.ts for the current gateway. */
export async function renderApiTypes(): Promise<string> {
  const doc = await gatewayOpenApi();
  const ast = await openapiTS(doc as never, { alphabetize: true });
  return HEADER + astToString(ast);
}
