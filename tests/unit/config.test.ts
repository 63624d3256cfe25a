import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, ENVIRONMENT, dataFiles, defaultDataDir, loadConfig } from '../../server/config/config';

describe('loadConfig', () => {
  it('runs with no environment at all: loopback, the documented ports, PGlite in the XDG data dir', () => {
    const c = loadConfig({});
    expect(c).toEqual({
      dataDir: defaultDataDir(),
      host: '127.0.0.1',
      gatewayPort: 12080,
      controlPort: 12082,
      databaseUrl: undefined,
      adminPassword: undefined,
      masterKey: undefined,
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 604800,
      maxBodyBytes: 10485760,
      maxConcurrentRequests: 256,
      requestTimeoutSeconds: 10,
      maxStreamsPerUser: 32,
      maxStreamsPerAddress: 128,
      allowedOrigins: [],
      allowedHosts: [],
      logLevel: 'info',
      chatTimeoutSeconds: 120,
      chatRetries: 2,
      chatKeepaliveSeconds: 10,
      taskTimeoutSeconds: 600,
      sandboxImage: 'cynode-sandbox:latest',
      noNodeGraceSeconds: 300,
      nodePsk: undefined,
      nodeHeartbeatSeconds: 15,
      nodeStaleSeconds: 45,
      embeddedNode: true,
      embeddedWorkerPort: 0,
      embeddedNodeMaxJobs: 2,
      ollamaImage: 'ollama/ollama',
      ollamaHost: undefined,
      inferenceMode: 'allow',
      retentionIntervalSeconds: 3600,
      accessAuditRetentionDays: 90,
      connectorRatePerMinute: 60,
      connectorBreakerFailures: 5,
      connectorHealthSeconds: 30,
    });
    expect(defaultDataDir()).toMatch(/cynode$/);
  });

  it('documents defaults that are the real defaults', () => {
    const c = loadConfig({});
    const documented = Object.fromEntries(ENVIRONMENT.map((e) => [e.name, e.default]));
    expect(documented.CYNODE_DATA_DIR).toBe(c.dataDir);
    expect(documented.CYNODE_HOST).toBe(c.host);
    expect(documented.CYNODE_GATEWAY_PORT).toBe(String(c.gatewayPort));
    expect(documented.CYNODE_CONTROL_PORT).toBe(String(c.controlPort));
    expect(documented.CYNODE_ACCESS_TOKEN_TTL).toBe(String(c.accessTokenTtlSeconds));
    expect(documented.CYNODE_REFRESH_TOKEN_TTL).toBe(String(c.refreshTokenTtlSeconds));
    expect(documented.CYNODE_MAX_BODY_BYTES).toBe(String(c.maxBodyBytes));
    expect(documented.CYNODE_MAX_CONCURRENT_REQUESTS).toBe(String(c.maxConcurrentRequests));
    expect(documented.CYNODE_REQUEST_TIMEOUT_SECONDS).toBe(String(c.requestTimeoutSeconds));
    expect(documented.CYNODE_MAX_STREAMS_PER_USER).toBe(String(c.maxStreamsPerUser));
    expect(documented.CYNODE_MAX_STREAMS_PER_ADDRESS).toBe(String(c.maxStreamsPerAddress));
    expect(documented.CYNODE_LOG_LEVEL).toBe(c.logLevel);
    expect(documented.CYNODE_CHAT_TIMEOUT_SECONDS).toBe(String(c.chatTimeoutSeconds));
    expect(documented.CYNODE_CHAT_RETRIES).toBe(String(c.chatRetries));
    expect(documented.CYNODE_CHAT_KEEPALIVE_SECONDS).toBe(String(c.chatKeepaliveSeconds));
    expect(documented.CYNODE_TASK_TIMEOUT_SECONDS).toBe(String(c.taskTimeoutSeconds));
    expect(documented.CYNODE_SANDBOX_IMAGE).toBe(c.sandboxImage);
    expect(documented.CYNODE_NO_NODE_GRACE_SECONDS).toBe(String(c.noNodeGraceSeconds));
    expect(documented.CYNODE_NODE_HEARTBEAT_SECONDS).toBe(String(c.nodeHeartbeatSeconds));
    expect(documented.CYNODE_NODE_STALE_SECONDS).toBe(String(c.nodeStaleSeconds));
    expect(documented.CYNODE_EMBEDDED_NODE).toBe(c.embeddedNode ? '1' : '0');
    expect(documented.CYNODE_NODE_MAX_JOBS).toBe(String(c.embeddedNodeMaxJobs));
    expect(documented.CYNODE_OLLAMA_IMAGE).toBe(c.ollamaImage);
    expect(documented.CYNODE_INFERENCE_MODE).toBe(c.inferenceMode);
  });

  it('reads every documented variable', () => {
    const env = {
      CYNODE_DATA_DIR: '/srv/cynode',
      CYNODE_HOST: '0.0.0.0',
      CYNODE_GATEWAY_PORT: '8080',
      CYNODE_CONTROL_PORT: '8082',
      DATABASE_URL: 'postgresql://cy:pw@db.lan:5432/cynode',
      CYNODE_ADMIN_PASSWORD: 'a-long-password',
      CYNODE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
      CYNODE_ACCESS_TOKEN_TTL: '60',
      CYNODE_REFRESH_TOKEN_TTL: '3600',
      CYNODE_MAX_BODY_BYTES: '2048',
      CYNODE_MAX_CONCURRENT_REQUESTS: '4',
      CYNODE_REQUEST_TIMEOUT_SECONDS: '30',
      CYNODE_MAX_STREAMS_PER_USER: '8',
      CYNODE_MAX_STREAMS_PER_ADDRESS: '16',
      CYNODE_ALLOWED_ORIGINS: ' http://a.lan:3000 ,, https://b.lan ',
      CYNODE_ALLOWED_HOSTS: 'Desktop.LAN, 192.168.1.20 ,[fd00::20]',
      CYNODE_LOG_LEVEL: 'debug',
      CYNODE_CHAT_TIMEOUT_SECONDS: '300',
      CYNODE_CHAT_RETRIES: '0',
      CYNODE_CHAT_KEEPALIVE_SECONDS: '15',
      CYNODE_TASK_TIMEOUT_SECONDS: '30',
      CYNODE_SANDBOX_IMAGE: 'registry.lan/sandbox:2',
      CYNODE_NO_NODE_GRACE_SECONDS: '0',
      CYNODE_NODE_PSK: 'a-join-key-of-16-chars',
      CYNODE_NODE_HEARTBEAT_SECONDS: '5',
      CYNODE_NODE_STALE_SECONDS: '20',
      CYNODE_EMBEDDED_NODE: '0',
      CYNODE_WORKER_PORT: '12091',
      CYNODE_NODE_MAX_JOBS: '4',
      CYNODE_OLLAMA_IMAGE: 'ollama/ollama:rocm',
      OLLAMA_HOST: 'gpu-box.lan:11434',
      CYNODE_INFERENCE_MODE: 'disabled',
      CYNODE_RETENTION_INTERVAL_SECONDS: '600',
      CYNODE_ACCESS_AUDIT_RETENTION_DAYS: '30',
      CYNODE_CONNECTOR_RATE_PER_MINUTE: '120',
      CYNODE_CONNECTOR_BREAKER_FAILURES: '3',
      CYNODE_CONNECTOR_HEALTH_SECONDS: '10',
    };
    // A variable added to ENVIRONMENT must be added here too, or this test cannot vouch for it.
    expect(Object.keys(env).sort()).toEqual(ENVIRONMENT.map((e) => e.name).sort());
    expect(loadConfig(env)).toEqual({
      dataDir: '/srv/cynode',
      host: '0.0.0.0',
      gatewayPort: 8080,
      controlPort: 8082,
      databaseUrl: 'postgresql://cy:pw@db.lan:5432/cynode',
      adminPassword: 'a-long-password',
      masterKey: env.CYNODE_MASTER_KEY,
      accessTokenTtlSeconds: 60,
      refreshTokenTtlSeconds: 3600,
      maxBodyBytes: 2048,
      maxConcurrentRequests: 4,
      requestTimeoutSeconds: 30,
      maxStreamsPerUser: 8,
      maxStreamsPerAddress: 16,
      allowedOrigins: ['http://a.lan:3000', 'https://b.lan'],
      allowedHosts: ['desktop.lan', '192.168.1.20', 'fd00::20'],
      logLevel: 'debug',
      chatTimeoutSeconds: 300,
      chatRetries: 0,
      chatKeepaliveSeconds: 15,
      taskTimeoutSeconds: 30,
      sandboxImage: 'registry.lan/sandbox:2',
      noNodeGraceSeconds: 0,
      nodePsk: 'a-join-key-of-16-chars',
      nodeHeartbeatSeconds: 5,
      nodeStaleSeconds: 20,
      embeddedNode: false,
      embeddedWorkerPort: 12091,
      embeddedNodeMaxJobs: 4,
      ollamaImage: 'ollama/ollama:rocm',
      ollamaHost: 'gpu-box.lan:11434',
      inferenceMode: 'disabled',
      retentionIntervalSeconds: 600,
      accessAuditRetentionDays: 30,
      connectorRatePerMinute: 120,
      connectorBreakerFailures: 3,
      connectorHealthSeconds: 10,
    });
  });

  it('treats an empty variable as unset', () => {
    const empty = Object.fromEntries(ENVIRONMENT.map((e) => [e.name, '']));
    expect(loadConfig(empty)).toEqual(loadConfig({}));
  });

  it('accepts port 0 (the OS picks) and postgres:// URLs', () => {
    const c = loadConfig({ CYNODE_GATEWAY_PORT: '0', CYNODE_CONTROL_PORT: '0', DATABASE_URL: 'postgres://localhost/cynode' });
    expect([c.gatewayPort, c.controlPort, c.databaseUrl]).toEqual([0, 0, 'postgres://localhost/cynode']);
  });

  it('lets command-line overrides win over the environment', () => {
    const c = loadConfig({ CYNODE_GATEWAY_PORT: '8080', CYNODE_DATA_DIR: '/env' }, { gatewayPort: 9090, dataDir: '/flag' });
    expect([c.gatewayPort, c.dataDir]).toEqual([9090, '/flag']);
  });

  it.each([
    ['CYNODE_GATEWAY_PORT', 'abc'],
    ['CYNODE_GATEWAY_PORT', '65536'],
    ['CYNODE_GATEWAY_PORT', '-1'],
    ['CYNODE_CONTROL_PORT', '80.5'],
    ['CYNODE_ACCESS_TOKEN_TTL', '1'],
    ['CYNODE_ACCESS_TOKEN_TTL', 'forever'],
    ['CYNODE_REFRESH_TOKEN_TTL', '10'],
    ['CYNODE_MAX_BODY_BYTES', '10'],
    ['CYNODE_MAX_CONCURRENT_REQUESTS', '0'],
    ['CYNODE_REQUEST_TIMEOUT_SECONDS', '0'],
    ['CYNODE_MAX_STREAMS_PER_USER', '0'],
    ['CYNODE_MAX_STREAMS_PER_ADDRESS', '0'],
    ['CYNODE_TASK_TIMEOUT_SECONDS', '10801'],
    ['CYNODE_CHAT_TIMEOUT_SECONDS', '4'],
    ['CYNODE_CHAT_RETRIES', '11'],
    ['CYNODE_CHAT_KEEPALIVE_SECONDS', '0'],
    ['CYNODE_NO_NODE_GRACE_SECONDS', '-5'],
    ['CYNODE_NODE_HEARTBEAT_SECONDS', '0'],
    ['CYNODE_NODE_STALE_SECONDS', '91'],
    ['CYNODE_NODE_MAX_JOBS', '0'],
    ['CYNODE_RETENTION_INTERVAL_SECONDS', '59'],
    ['CYNODE_WORKER_PORT', '70000'],
  ])('refuses %s=%s, naming the variable, the allowed range and the value', (name, value) => {
    let err: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(new RegExp(`^${name} must be a whole number from \\d+ to \\d+ \\(got "${value.replace('.', '\\.')}"\\)$`));
  });

  it.each([
    [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL must start with postgres:\/\/ or postgresql:\/\/$/],
    [{ CYNODE_LOG_LEVEL: 'chatty' }, /^CYNODE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent$/],
    [{ CYNODE_ADMIN_PASSWORD: 'short' }, /^CYNODE_ADMIN_PASSWORD must be at least 8 characters$/],
    [{ CYNODE_NODE_PSK: 'too-short' }, /^CYNODE_NODE_PSK must be at least 16 characters$/],
    [{ CYNODE_ALLOWED_HOSTS: 'desktop.lan,http://desktop.lan' }, /^CYNODE_ALLOWED_HOSTS: "http:\/\/desktop\.lan" is not a host name or address \(give no scheme or port\)$/],
    [{ CYNODE_ALLOWED_HOSTS: 'desktop.lan:12080' }, /^CYNODE_ALLOWED_HOSTS: "desktop\.lan:12080" is not a host name/],
    [{ CYNODE_INFERENCE_MODE: 'sometimes' }, /^CYNODE_INFERENCE_MODE must be one of allow, disabled, require \(got "sometimes"\)$/],
    [{ CYNODE_NODE_HEARTBEAT_SECONDS: '30', CYNODE_NODE_STALE_SECONDS: '30' }, /^CYNODE_NODE_STALE_SECONDS \(30\) must be more than CYNODE_NODE_HEARTBEAT_SECONDS \(30\)$/],
  ])('refuses %j with a clear message', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('defaults the stale window to three heartbeats, never more than 90 s', () => {
    expect(loadConfig({ CYNODE_NODE_HEARTBEAT_SECONDS: '5' }).nodeStaleSeconds).toBe(15);
    expect(loadConfig({ CYNODE_NODE_HEARTBEAT_SECONDS: '60' }).nodeStaleSeconds).toBe(90);
  });

  it('checks a database URL given on the command line as well', () => {
    expect(() => loadConfig({}, { databaseUrl: 'mysql://x' })).toThrow(ConfigError);
  });

  it('never echoes the database URL (it may carry a password) in its error', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root:s3cret@x/db' })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('s3cret') }));
  });

  it('is documented in the README, every variable of it', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const v of ENVIRONMENT) expect(readme).toContain(`| \`${v.name}\` |`);
  });

  it('keeps every data file inside the data directory', () => {
    expect(dataFiles.masterKey('/d')).toBe('/d/master.key');
    expect(dataFiles.initialAdminPassword('/d')).toBe('/d/initial-admin-password');
    expect(dataFiles.pglite('/d')).toBe('/d/pglite');
  });
});

describe('CYNODE_EMBEDDED_NODE', () => {
  it('is on unless turned off, and refuses what is neither on nor off', () => {
    expect(loadConfig({}).embeddedNode).toBe(true);
    expect(loadConfig({ CYNODE_EMBEDDED_NODE: '0' }).embeddedNode).toBe(false);
    expect(loadConfig({ CYNODE_EMBEDDED_NODE: 'false' }).embeddedNode).toBe(false);
    expect(() => loadConfig({ CYNODE_EMBEDDED_NODE: 'maybe' })).toThrow(/^CYNODE_EMBEDDED_NODE must be 1 or 0 \(got "maybe"\)$/);
  });
});
