/*
 * Refreshes the gitleaks rule catalogue that redaction uses (server/redaction/gitleaks-rules/rules.json)
 * from a copy of gitleaks' own config/gitleaks.toml:
 *
 *   npx tsx build/update-gitleaks-rules.ts path/to/gitleaks/config/gitleaks.toml <gitleaks commit or tag>
 *
 * The file is converted as is (TOML to JSON, nothing left out or changed), so that the catalogue
 * stays gitleaks' own; server/redaction/gitleaks.ts reads it. Run tests/unit/redaction*.test.ts
 * after a refresh.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'smol-toml';

const [tomlPath, version] = process.argv.slice(2);
if (!tomlPath || !version) {
  console.error('usage: tsx build/update-gitleaks-rules.ts <gitleaks.toml> <gitleaks commit or tag>');
  process.exit(2);
}
const config = parse(readFileSync(tomlPath, 'utf8'));
const out = new URL('../server/redaction/gitleaks-rules/rules.json', import.meta.url);
writeFileSync(out, JSON.stringify({ source: `gitleaks config/gitleaks.toml at ${version}`, config }, null, 1) + '\n');
console.log(`wrote ${out.pathname}: ${(config.rules as unknown[]).length} rules`);
