import { readFile, writeFile } from 'node:fs/promises';
import { expect, test } from 'vitest';
import { REGENERATE_COMMAND, SCHEMA_FILE, renderApiTypes } from '../../build/api-types';

// `npm run api:types` runs this file with CYNODE_WRITE_API_TYPES=1 to rewrite the committed types.
test('the renderer API types match the gateway OpenAPI document', async () => {
  const fresh = await renderApiTypes();
  if (process.env.CYNODE_WRITE_API_TYPES === '1') {
    await writeFile(SCHEMA_FILE, fresh);
    return;
  }
  const committed = await readFile(SCHEMA_FILE, 'utf8').catch(() => '');
  if (committed !== fresh) throw new Error(`${SCHEMA_FILE} is stale: the gateway's OpenAPI document changed. Run \`${REGENERATE_COMMAND}\` and commit the result.`);
  expect(committed).toBe(fresh);
});
