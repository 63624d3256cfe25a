import { describe, expect, it } from 'vitest';
import { executorEnvironment } from '../../server/connectors/executor/client';

describe('the connector executor environment', () => {
  it('keeps none of the secrets the server was configured with, but its own settings (allow list, approved MCP commands)', () => {
    const env = executorEnvironment({
      PATH: '/usr/bin',
      HOME: '/home/u',
      CYNODE_MASTER_KEY: 'bWFzdGVy',
      CYNODE_ADMIN_PASSWORD: 'pw',
      CYNODE_NODE_PSK: 'psk',
      DATABASE_URL: 'postgres://u:p@h/db',
      PGPASSWORD: 'p',
      CYNODE_CONNECTOR_ALLOW: '10.0.0.0/8',
      CYNODE_MCP_COMMANDS: '{"memory": ["server-memory"]}',
    });
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/home/u', CYNODE_CONNECTOR_ALLOW: '10.0.0.0/8', CYNODE_MCP_COMMANDS: '{"memory": ["server-memory"]}' });
  });
});
