import { describe, expect, it } from 'vitest';
import { approvedCommandsFromEnvironment, NO_COMMANDS, parseApprovedCommands } from '../../server/connectors/mcp-commands';

describe('approved MCP commands', () => {
  it('reads argv arrays and full entries, with no arguments or credential unless the entry says so', () => {
    const commands = parseApprovedCommands(
      JSON.stringify({
        memory: ['node', '/opt/mcp/memory.js'],
        github: { argv: ['/usr/local/bin/github-mcp', 'stdio'], env: { GITHUB_HOST: 'github.com' }, credential_env: 'GITHUB_TOKEN', allow_args: true },
      }),
    );
    expect(commands.get('memory')).toEqual({ argv: ['node', '/opt/mcp/memory.js'], env: {}, credentialEnv: undefined, allowArgs: false });
    expect(commands.get('github')).toEqual({
      argv: ['/usr/local/bin/github-mcp', 'stdio'],
      env: { GITHUB_HOST: 'github.com' },
      credentialEnv: 'GITHUB_TOKEN',
      allowArgs: true,
    });
  });

  it('approves nothing when unset or empty', () => {
    expect(parseApprovedCommands(undefined)).toBe(NO_COMMANDS);
    expect(parseApprovedCommands('  ')).toBe(NO_COMMANDS);
    expect(approvedCommandsFromEnvironment({}).size).toBe(0);
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['an array', '[]', /JSON object/],
    ['a bad name', '{"a b": ["x"]}', /not a valid command name/],
    ['an empty argv', '{"x": []}', /"x" is not valid/],
    ['a shell string', '{"x": "node server.js"}', /"x" is not valid/],
    ['an unknown field', '{"x": {"argv": ["x"], "shell": true}}', /"x" is not valid/],
    ['a bad variable name', '{"x": {"argv": ["x"], "credential_env": "A-B"}}', /"x" is not valid/],
    ['a NUL in an argument', JSON.stringify({ x: ['x', 'a\u0000b'] }), /"x" is not valid/],
  ])('refuses %s, naming the problem', (_what, text, message) => {
    expect(() => parseApprovedCommands(text)).toThrow(message);
  });

  it('re-reads the list when the environment changes', () => {
    const env = { CYNODE_MCP_COMMANDS: '{"a": ["x"]}' };
    expect([...approvedCommandsFromEnvironment(env).keys()]).toEqual(['a']);
    env.CYNODE_MCP_COMMANDS = '{"b": ["y"]}';
    expect([...approvedCommandsFromEnvironment(env).keys()]).toEqual(['b']);
  });
});
