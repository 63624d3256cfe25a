#!/usr/bin/env node
// The `cynode` command: runs the built CLI (npm run build produces it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../out/main/cli.js', import.meta.url));
if (!existsSync(cli)) {
  process.stderr.write('cynode: not built yet; run `npm run build` (or `npm start`, which builds first)\n');
  process.exit(1);
}
await import(cli);
