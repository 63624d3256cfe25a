import { Command, Option } from 'commander';
import { ConfigError, ENVIRONMENT, dataFiles, defaultDataDir, loadConfig, type ServerConfig } from './config/config';
import { SchemaTooNewError } from './db';
import { VERSION, identityServices, startCynode } from './app';
import { openDatabase } from './bootstrap/database';
import { DataDirBusyError } from './bootstrap/data-dir-lock';
import { OfflineResetError, resetPasswordOffline } from './bootstrap/reset-password';
import { MasterKeyRotationError, rotateMasterKey } from './bootstrap/rotate-master-key';
import { rotateConnectorKey } from './bootstrap/rotate-connector-key';
import { NODE_ENVIRONMENT, NodeConfigError, loadNodeSettings } from '../node-manager/agent/config';
import { JoinRefusedError, startNodeManager } from '../node-manager/agent/node-manager';

const envHelp = () =>
  '\nEnvironment (options on the command line win):\n' + ENVIRONMENT.map((e) => `  ${e.name.padEnd(32)} ${e.description} [default: ${e.default}]`).join('\n') + '\n';

const port = (flag: string) => (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(`${flag} must be a port number from 0 to 65535 (got "${value}")`);
  }
  return n;
};

// The environment is read by loadConfig alone (one parser, one set of error messages, empty means
// unset); commander only parses the flags, which win. The help still names each flag's variable.
const option = (flags: string, description: string, variable: string) => new Option(flags, `${description} (env: ${variable})`);

type ServeFlags = { host?: string; gatewayPort?: number; controlPort?: number; dataDir?: string; databaseUrl?: string };

/** The environment, with the flags given on the command line winning. */
function configFrom(flags: ServeFlags): ServerConfig {
  const overrides: Partial<ServerConfig> = {};
  if (flags.host !== undefined) overrides.host = flags.host;
  if (flags.gatewayPort !== undefined) overrides.gatewayPort = flags.gatewayPort;
  if (flags.controlPort !== undefined) overrides.controlPort = flags.controlPort;
  if (flags.dataDir !== undefined) overrides.dataDir = flags.dataDir;
  if (flags.databaseUrl !== undefined) overrides.databaseUrl = flags.databaseUrl;
  return loadConfig(process.env, overrides);
}

async function resetPasswordCommand(flags: ServeFlags & { handle: string }): Promise<void> {
  const config = configFrom(flags);
  const database = await openDatabase(config);
  try {
    const { users } = identityServices(database.db, dataFiles.initialAdminPassword(config.dataDir));
    const password = await resetPasswordOffline(users, flags.handle, process.env.CYNODE_NEW_PASSWORD || undefined);
    process.stdout.write(
      process.env.CYNODE_NEW_PASSWORD
        ? `Password of "${flags.handle}" set from CYNODE_NEW_PASSWORD; their sessions have ended.\n`
        : `New password of "${flags.handle}" (shown once; their sessions have ended):\n\n    ${password}\n\n`,
    );
  } finally {
    await database.close();
  }
}

async function rotateMasterKeyCommand(flags: ServeFlags): Promise<void> {
  const config = configFrom(flags);
  const given = process.env.CYNODE_NEW_MASTER_KEY || undefined;
  const done = await rotateMasterKey(config, given);
  const lines = [`Master key rotated: ${done.nodeSecrets} node secret(s) and ${done.executorKeys} connector executor key(s) are sealed under the new key.`];
  if (done.source === 'file') {
    lines.push(
      `  new key        ${done.keyFile}`,
      `  previous key   ${done.previousKeyFile} (backups made before now need it; delete it once they are gone)`,
    );
  } else if (given) {
    lines.push('Set CYNODE_MASTER_KEY to the value of CYNODE_NEW_MASTER_KEY on every gateway that shares this database before starting it.');
  } else {
    lines.push(
      'Set CYNODE_MASTER_KEY to this new key (shown once) on every gateway that shares this database before starting it:',
      '',
      `    ${done.newKey}`,
      '',
    );
  }
  lines.push('Users sign in again and nodes register again (their tokens were signed with the previous key); connector credentials are unchanged.');
  process.stdout.write(lines.join('\n') + '\n');
}

async function rotateConnectorKeyCommand(flags: ServeFlags): Promise<void> {
  const { kid, rewrapped } = await rotateConnectorKey(configFrom(flags));
  process.stdout.write(`Connector executor key pair ${kid} made; credentials are sealed to it from now on. ${rewrapped} stored credential(s) rewrapped to it; none is left on a retired pair.\n`);
}

/** Stops `close` on SIGINT/SIGTERM and exits 0 once it is done (1 if it hangs). */
function exitOnSignal(close: () => Promise<void>): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`Received ${signal}; shutting down\n`);
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

type NodeFlags = { join?: string; psk?: string; name?: string; host?: string; workerPort?: string; advertiseUrl?: string; dataDir?: string };

async function node(flags: NodeFlags): Promise<void> {
  const settings = loadNodeSettings(process.env, flags, defaultDataDir());
  const manager = await startNodeManager({
    ...settings,
    labels: [],
    logLevel: process.env.CYNODE_LOG_LEVEL || 'warn',
    log: (message) => process.stdout.write(`${new Date().toISOString()} ${message}\n`),
  });
  // Before the banner: whoever reads it may signal at once, and until a handler is installed a
  // SIGTERM kills the process without a clean stop.
  exitOnSignal(() => manager.close());
  process.stdout.write(
    [`CyNode node ${manager.nodeSlug}`, `  joined         ${settings.controlUrl}`, `  Worker API     ${manager.workerUrl}`, `  state          ${settings.stateDir}`].join('\n') + '\n',
  );
}

async function serve(flags: ServeFlags): Promise<void> {
  const config = configFrom(flags);

  const cynode = await startCynode(config);
  // In-flight requests finish; new connections are refused. Installed before the banner: whoever
  // reads it may signal at once, and until a handler exists a SIGTERM kills without a clean stop.
  exitOnSignal(() => cynode.close());
  const lines = [
    `CyNode ${VERSION}`,
    `  console        ${cynode.gatewayUrl}/  (open it in a browser)`,
    `  gateway        ${cynode.gatewayUrl}  (API at /v1; OpenAI-compatible at /v1)`,
    `  control plane  ${cynode.controlUrl}  (nodes join here)`,
    `  database       ${cynode.database}`,
    `  data directory ${config.dataDir}`,
  ];
  if (cynode.firstRun.generatedPassword) {
    lines.push(
      '',
      '  First run: created user "admin" with this password (shown once; also saved, readable only by you, in',
      `  ${dataFiles.initialAdminPassword(config.dataDir)}):`,
      '',
      `      ${cynode.firstRun.generatedPassword}`,
      '',
    );
  } else if (cynode.firstRun.adminCreated) {
    lines.push('  First run: created user "admin" with the password from CYNODE_ADMIN_PASSWORD.');
  }
  process.stdout.write(lines.join('\n') + '\n');
}

const program = new Command()
  .name('cynode')
  .description('CyNode: a local-first AI orchestrator (User API Gateway, control plane and node manager)')
  .version(VERSION)
  .addHelpText('after', envHelp());

program
  .command('serve')
  .description('Run the orchestrator: the User API Gateway and the control plane, on PGlite in the data directory or on DATABASE_URL')
  .addOption(option('--host <address>', 'bind address of both listeners', 'CYNODE_HOST'))
  .addOption(option('--gateway-port <port>', 'User API Gateway port', 'CYNODE_GATEWAY_PORT').argParser(port('--gateway-port')))
  .addOption(option('--control-port <port>', 'control-plane port', 'CYNODE_CONTROL_PORT').argParser(port('--control-port')))
  .addOption(option('--data-dir <path>', 'data directory', 'CYNODE_DATA_DIR'))
  .addOption(option('--database-url <url>', 'PostgreSQL connection string instead of PGlite', 'DATABASE_URL'))
  .addHelpText('after', envHelp())
  .action(serve);

const nodeEnvHelp = () =>
  '\nEnvironment (options on the command line win):\n' + NODE_ENVIRONMENT.map((e) => `  ${e.name.padEnd(32)} ${e.description} [default: ${e.default}]`).join('\n') + '\n';

program
  .command('node')
  .description('Run a Node Manager on this machine and join a CyNode control plane over HTTP: its sandboxes join the pool')
  .addOption(option('--join <url>', 'control plane URL, e.g. http://desktop.lan:12082', 'CYNODE_CONTROL_URL'))
  .addOption(option('--psk <key>', 'join key', 'CYNODE_NODE_PSK'))
  .addOption(option('--name <name>', 'node name', 'CYNODE_NODE_NAME'))
  .addOption(option('--host <address>', 'Worker API bind address', 'CYNODE_WORKER_HOST'))
  .addOption(option('--worker-port <port>', 'Worker API port', 'CYNODE_WORKER_PORT'))
  .addOption(option('--advertise-url <url>', 'Worker API URL the orchestrator should call', 'CYNODE_ADVERTISE_URL'))
  .addOption(option('--data-dir <path>', 'data directory (node state goes in <dir>/node)', 'CYNODE_DATA_DIR'))
  .addHelpText('after', nodeEnvHelp())
  .action(node);

program
  .command('reset-password')
  .description(
    'Set a new password for a user (default: admin) directly in the database, for when nobody can sign in as an admin. ' +
      'With PGlite, stop `cynode serve` first. Prints a generated password, or uses CYNODE_NEW_PASSWORD.',
  )
  .addOption(new Option('--handle <handle>', 'whose password').default('admin'))
  .addOption(option('--data-dir <path>', 'data directory', 'CYNODE_DATA_DIR'))
  .addOption(option('--database-url <url>', 'PostgreSQL connection string instead of PGlite', 'DATABASE_URL'))
  .action(resetPasswordCommand);

program
  .command('rotate-master-key')
  .description(
    'Seal every secret kept under the master key (node tokens, the join key, the connector executor\'s keys) under a new master key. ' +
      'Stop every gateway on the database first. With a key file, it is replaced (the previous one is kept beside it); with CYNODE_MASTER_KEY, ' +
      'the new key is printed (or taken from CYNODE_NEW_MASTER_KEY) for you to configure.',
  )
  .addOption(option('--data-dir <path>', 'data directory', 'CYNODE_DATA_DIR'))
  .addOption(option('--database-url <url>', 'PostgreSQL connection string instead of PGlite', 'DATABASE_URL'))
  .action(rotateMasterKeyCommand);

program
  .command('rotate-connector-key')
  .description('Make a new key pair for the connector executor and retire the others: new credentials are sealed to it, older ones still open. With PGlite, stop `cynode serve` first.')
  .addOption(option('--data-dir <path>', 'data directory', 'CYNODE_DATA_DIR'))
  .addOption(option('--database-url <url>', 'PostgreSQL connection string instead of PGlite', 'DATABASE_URL'))
  .action(rotateConnectorKeyCommand);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof SchemaTooNewError || err instanceof DataDirBusyError || err instanceof OfflineResetError || err instanceof NodeConfigError || err instanceof JoinRefusedError || err instanceof MasterKeyRotationError) {
    process.stderr.write(`cynode: ${err.message}\n`);
    process.exit(2);
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'CYNODE_LISTEN') {
    process.stderr.write(`cynode: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`cynode: failed to start: ${e?.message ?? String(err)}\n`);
  process.exit(1);
});
