/**
 * `npm run bench -- tools`: every `tools-*.ts` beside this file (the MCP server, OpenAI tool
 * calling), each exporting its benchmark as its default export, run one after the other.
 */
import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export async function toolsBench(): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const files = (await readdir(here)).filter((f) => /^tools-[a-z0-9-]+\.ts$/.test(f)).sort();
  for (const file of files) {
    console.log(`\n### ${file.replace(/\.ts$/, '')}\n`);
    const mod = (await import(pathToFileURL(`${here}/${file}`).href)) as { default?: () => Promise<void> };
    if (typeof mod.default !== 'function') throw new Error(`${file} exports no default benchmark function`);
    await mod.default();
  }
}
