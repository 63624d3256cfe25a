/**
 * `npm run bench -- <suite>`: benchmarks that compare CyNode with the thing it wraps, side by
 * side in one run on this machine. Timing goals live here, never in the tests.
 */
import { chatBench } from './chat';
import { consoleBench } from './console';
import { ledgerBench } from './ledger';
import { sandboxBench } from './sandbox';

const suites: Record<string, () => Promise<void>> = { sandbox: sandboxBench, chat: chatBench, ledger: ledgerBench, console: consoleBench, policy: async () => (await import('./policy')).policyBench(), connectors: async () => (await import('./connectors')).connectorsBench(),
  // Issue 15: each part of the tools benchmark in its own file (OpenAI tool calling here; MCP beside it).
  tools: async () => {
    await (await import('./tools-openai')).toolsOpenAiBench();
    await (await import('./tools-mcp')).toolsMcpBench();
  },
  // Issue 16: the project-manager agent's cost per step, the model server's own time subtracted.
  agent: async () => (await import('./agent')).agentBench(),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !suites[w]);
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; available: ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  console.log(`\n## ${name}\n`);
  await suites[name]!();
}
process.exit(0);
