import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IForbiddenRuleType } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

// Only the executor process may load the module that opens its private keys: the gateway's module
// graph must not contain it, and the dependency rules that say so must catch a violation.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PRIVATE_KEYS = 'server/connectors/executor/private-keys.ts';
const RULES = ['executor-private-keys-only-in-executor', 'gateway-never-reaches-executor-private-keys', 'executor-through-its-client'];
const config = createRequire(import.meta.url)(join(ROOT, '.dependency-cruiser.cjs')) as { forbidden: IForbiddenRuleType[] };
const resolve = { extensions: ['.ts', '.tsx', '.mjs', '.js', '.cjs'] };

async function modulesOf(entries: string[], baseDir = ROOT): Promise<string[]> {
  const { output } = await cruise(entries, { baseDir, tsPreCompilationDeps: false, doNotFollow: { path: 'node_modules' } }, resolve);
  return (output as ICruiseResult).modules.map((m) => m.source);
}

describe('connector executor boundary', () => {
  it('keeps the private-key module out of the gateway and the desktop main process', async () => {
    const gateway = await modulesOf(['server/app.ts', 'server/cli.ts', 'main/index.ts']);
    expect(gateway).toContain('server/connectors/executor/client.ts');
    expect(gateway).not.toContain(PRIVATE_KEYS);
    expect(gateway).not.toContain('server/connectors/executor/main.ts');
    // The executor's own graph does hold it: the check above would see it.
    expect(await modulesOf(['server/connectors/executor/main.ts'])).toContain(PRIVATE_KEYS);
  });

  it('has rules that refuse an import of the private-key module from outside the executor', async () => {
    const rules = config.forbidden.filter((r) => RULES.includes(r.name ?? ''));
    expect(rules.map((r) => r.name).sort()).toEqual([...RULES].sort());
    const dir = await mkdtemp(join(tmpdir(), 'cynode-boundary-'));
    try {
      const files: Record<string, string> = {
        'server/app.ts': "import './connectors/executor/client';\nimport './chat/service';\n",
        'server/chat/service.ts': "import '../connectors/executor/run';\nimport '../connectors/executor/private-keys';\n",
        'server/connectors/executor/client.ts': "import './seal';\n",
        'server/connectors/executor/seal.ts': "import './private-keys';\n",
        'server/connectors/executor/run.ts': 'export {};\n',
        [PRIVATE_KEYS]: 'export {};\n',
      };
      for (const [path, text] of Object.entries(files)) {
        await mkdir(dirname(join(dir, path)), { recursive: true });
        await writeFile(join(dir, path), text);
      }
      const { output } = await cruise(['server'], { baseDir: dir, validate: true, ruleSet: { forbidden: rules }, tsPreCompilationDeps: false }, resolve);
      const violations = (output as ICruiseResult).summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
      expect(violations).toEqual(
        expect.arrayContaining([
          'executor-through-its-client: server/chat/service.ts -> server/connectors/executor/run.ts',
          `executor-private-keys-only-in-executor: server/chat/service.ts -> ${PRIVATE_KEYS}`,
          expect.stringMatching(/^gateway-never-reaches-executor-private-keys: server\/app\.ts -> /),
          expect.stringMatching(/^gateway-never-reaches-executor-private-keys: server\/connectors\/executor\/client\.ts -> /),
        ]),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
