import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { freePort } from './ports';

/**
 * A private Dovecot IMAP server for one test file: its own configuration, run, state and log
 * directories under a temporary directory, plain IMAP on a loopback port, users from a
 * passwd-file and mail in maildirs. Nothing of the system's Dovecot is used or touched.
 */
export interface Dovecot {
  host: string;
  port: number;
  /** Puts a raw RFC 5322 message into the user's INBOX (or another mailbox) as new mail. */
  deliver(user: string, raw: string, mailbox?: string): Promise<void>;
  stop(): Promise<void>;
}

export const DOVECOT_BINARY = '/usr/sbin/dovecot';

/** Dovecot refuses uid 0 for mail users; mail is owned by nobody. */
const MAIL_UID = 65534;
const MAIL_GID = 65534;

export async function startDovecot(users: Record<string, string>): Promise<Dovecot> {
  const root = await mkdtemp(join(tmpdir(), 'cynode-dovecot-'));
  // The mail processes run as nobody and must reach the maildirs below this directory.
  await chmod(root, 0o755);
  const dirs = { run: join(root, 'run'), state: join(root, 'state'), log: join(root, 'log'), mail: join(root, 'mail') };
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true, mode: 0o755 });
  const asRoot = process.getuid?.() === 0;
  const uid = asRoot ? MAIL_UID : process.getuid!();
  const gid = asRoot ? MAIL_GID : process.getgid!();
  const me = asRoot ? null : (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.split(':')[2] === String(uid))?.split(':')[0];

  const passwd = Object.entries(users).map(([user, password]) => `${user}:{PLAIN}${password}::::::`);
  await writeFile(join(root, 'passwd'), `${passwd.join('\n')}\n`, { mode: 0o644 });
  for (const user of Object.keys(users)) await makeMaildir(join(dirs.mail, user), uid, gid);

  const port = await freePort();
  const conf = [
    `instance_name = cynode-test-${randomBytes(4).toString('hex')}`,
    `base_dir = ${dirs.run}`,
    `state_dir = ${dirs.state}`,
    `log_path = ${join(dirs.log, 'dovecot.log')}`,
    `info_log_path = ${join(dirs.log, 'dovecot.log')}`,
    'protocols = imap',
    'listen = 127.0.0.1',
    'ssl = no',
    'disable_plaintext_auth = no',
    'auth_mechanisms = plain login',
    'auth_failure_delay = 0',
    'login_greeting = Dovecot ready.',
    `mail_location = maildir:${dirs.mail}/%u`,
    ...(me ? [`default_login_user = ${me}`, `default_internal_user = ${me}`, `first_valid_uid = ${uid}`] : []),
    'passdb {',
    '  driver = passwd-file',
    `  args = scheme=PLAIN username_format=%u ${join(root, 'passwd')}`,
    '}',
    'userdb {',
    '  driver = static',
    `  args = uid=${uid} gid=${gid} home=${dirs.mail}/%u`,
    '}',
    'service imap-login {',
    '  inet_listener imap {',
    '    address = 127.0.0.1',
    `    port = ${port}`,
    '  }',
    '  inet_listener imaps {',
    '    port = 0',
    '  }',
    '}',
    // Failed logins from one address are slowed down by seconds each (auth penalty); the auth
    // process skips that when it cannot open this socket, and tests fail logins on purpose.
    'service anvil {',
    '  unix_listener anvil-auth-penalty {',
    '    mode = 0',
    '  }',
    '}',
  ].join('\n');
  const confPath = join(root, 'dovecot.conf');
  await writeFile(confPath, `${conf}\n`);

  const child = spawn(DOVECOT_BINARY, ['-c', confPath, '-F'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(root, { recursive: true, force: true });
  };

  try {
    await waitForGreeting(port, child);
  } catch (e) {
    const log = await readFile(join(dirs.log, 'dovecot.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`dovecot did not start: ${(e as Error).message}\n${output}\n${log}`, { cause: e });
  }

  return {
    host: '127.0.0.1',
    port,
    async deliver(user, raw, mailbox = 'INBOX') {
      // IMAP APPEND makes Dovecot give each message its UID at once, in delivery order; mail
      // dropped into a maildir is numbered at the next scan in an order the test cannot fix.
      const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: users[user]! }, logger: false });
      await client.connect();
      try {
        if (mailbox !== 'INBOX') await client.mailboxCreate(mailbox).catch(() => {});
        await client.append(mailbox, raw);
      } finally {
        await client.logout();
      }
    },
    stop,
  };
}

async function makeMaildir(dir: string, uid: number, gid: number): Promise<void> {
  for (const sub of ['', 'cur', 'new', 'tmp']) {
    const d = join(dir, sub);
    await mkdir(d, { recursive: true, mode: 0o700 });
    await chown(d, uid, gid).catch(() => {});
  }
}

/** Ready means the IMAP greeting arrived, not merely that the port accepts connections. */
async function waitForGreeting(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    const greeted = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let data = '';
      const done = (ok: boolean): void => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(1000, () => done(false));
      socket.on('data', (d) => {
        data += d.toString();
        if (data.includes('\r\n')) done(data.startsWith('* OK'));
      });
      socket.on('error', () => done(false));
    });
    if (greeted) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no IMAP greeting within 15 s');
}
