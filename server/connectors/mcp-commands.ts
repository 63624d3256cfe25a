import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The local MCP servers an administrator approved. A stdio MCP instance names one of them and
 * never gives a program of its own: whoever may configure an instance could otherwise run any
 * program as CyNode. The list comes from `CYNODE_MCP_COMMANDS`, a JSON object from names to
 * either an argv array or an entry:
 *
 *   {"memory": {"argv": ["node", "/opt/mcp/server-memory/dist/index.js"],
 *               "env": {"MEMORY_FILE_PATH": "/var/lib/cynode/memory.jsonl"},
 *               "credential_env": "API_KEY", "allow_args": false}}
 *
 * The argv is run as is, never through a shell. `env` is all of CyNode's choosing the server
 * sees beyond the MCP SDK's short list of inherited basics (HOME, LOGNAME, PATH, SHELL, TERM,
 * USER). `credential_env` is the one variable an instance's credential is put in: the
 * administrator names it, since a variable chosen by an instance's owner (NODE_OPTIONS,
 * LD_PRELOAD) could make the server run code of their choosing. Instances may append their own
 * `args` only where `allow_args` says so, for the same reason.
 */

const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';
const Arg = Type.String({ minLength: 1, maxLength: 4096, pattern: '^[^\\u0000]*$' });

const Entry = Type.Object(
  {
    argv: Type.Array(Arg, { minItems: 1, maxItems: 64 }),
    env: Type.Optional(Type.Record(Type.String({ pattern: ENV_NAME }), Type.String({ maxLength: 32_768, pattern: '^[^\\u0000]*$' }))),
    credential_env: Type.Optional(Type.String({ pattern: ENV_NAME })),
    allow_args: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** Command names as instances give them. */
export const COMMAND_NAME = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const COMMAND_NAME_RE = new RegExp(COMMAND_NAME);

export interface ApprovedCommand {
  /** The program and its fixed arguments. */
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  /** The variable an instance's credential goes in; without it the command takes none. */
  credentialEnv: string | undefined;
  allowArgs: boolean;
}

export type ApprovedCommands = ReadonlyMap<string, ApprovedCommand>;

export const NO_COMMANDS: ApprovedCommands = new Map();

/**
 * Parses the approved list. Anything malformed is an error naming the entry, so a typo is found
 * at start-up rather than leaving a server unexpectedly runnable or not.
 */
export function parseApprovedCommands(text: string | undefined): ApprovedCommands {
  if (!text?.trim()) return NO_COMMANDS;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('CYNODE_MCP_COMMANDS is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('CYNODE_MCP_COMMANDS must be a JSON object from command names to commands');
  }
  const commands = new Map<string, ApprovedCommand>();
  for (const [name, value] of Object.entries(parsed)) {
    if (!COMMAND_NAME_RE.test(name)) throw new Error(`CYNODE_MCP_COMMANDS: "${name}" is not a valid command name`);
    const entry: unknown = Array.isArray(value) ? { argv: value } : value;
    if (!Value.Check(Entry, entry)) {
      const first = Value.Errors(Entry, entry).First();
      throw new Error(`CYNODE_MCP_COMMANDS: the command "${name}" is not valid${first ? ` at ${first.path || '/'}: ${first.message}` : ''}`);
    }
    const e = entry as Static<typeof Entry>;
    commands.set(name, { argv: e.argv, env: e.env ?? {}, credentialEnv: e.credential_env, allowArgs: e.allow_args ?? false });
  }
  return commands;
}

let cached: { text: string | undefined; commands: ApprovedCommands } | undefined;

/** The process's approved list, read from `CYNODE_MCP_COMMANDS` (re-read when it changes). */
export function approvedCommandsFromEnvironment(env: NodeJS.ProcessEnv = process.env): ApprovedCommands {
  const text = env.CYNODE_MCP_COMMANDS;
  if (cached && cached.text === text) return cached.commands;
  const commands = parseApprovedCommands(text);
  cached = { text, commands };
  return commands;
}
