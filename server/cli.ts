import { Command, Option } from 'commander';
import { ConfigError, ENVIRONMENT, dataFiles, loadConfig, type ServerConfig } from './config/config';
import { SchemaTooNewError } from './db';
import { VERSION, startCynode } from './app';
import { openDatabase } from './bootstrap/database';
import { DataDirBusyError } from './bootstrap/data-dir-lock';
import { OfflineResetError, resetPasswordOffline } from './bootstrap/reset-password';

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
    const password = await resetPasswordOffline(database.db, flags.handle, process.env.CYNODE_NEW_PASSWORD || undefined);
    process.stdout.write(
      process.env.CYNODE_NEW_PASSWORD
        ? `Password of "${flags.handle}" set from CYNODE_NEW_PASSWORD; their sessions have ended.\n`
        : `New password of "${flags.handle}" (shown once; their sessions have ended):\n\n    ${password}\n\n`,
    );
  } finally {
    await database.close();
  }
}

async function serve(flags: ServeFlags): Promise<void> {
  const config = configFrom(flags);

  const cynode = await startCynode(config);
  const lines = [
    `CyNode ${VERSION}`,
    `  gateway        ${cynode.gatewayUrl}  (API at /v1)`,
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

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`Received ${signal}; shutting down\n`);
    // In-flight requests finish; new connections are refused.
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await cynode.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
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

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof SchemaTooNewError || err instanceof DataDirBusyError || err instanceof OfflineResetError) {
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
