import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * A real SMTP server (smtp-server) on loopback that accepts mail for users it knows and records
 * every message with the account it was sent under. Plain SMTP with AUTH over the unencrypted
 * connection: the package's bundled certificate has expired, so STARTTLS is switched off.
 */
export interface ReceivedMail {
  /** The account the client logged in as. */
  user: string | undefined;
  from: string;
  to: string[];
  raw: string;
  /** Top-level header fields, lower-case names, values unfolded. */
  headers: Record<string, string>;
  body: string;
}

export interface SmtpPeer {
  host: string;
  port: number;
  received: ReceivedMail[];
  /** Answer the next message with this SMTP reply code (e.g. 451, 550). */
  failNextWith(code: number): void;
  stop(): Promise<void>;
}

function parse(raw: string): { headers: Record<string, string>; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body: split < 0 ? '' : raw.slice(split + 4) };
}

export async function startSmtpPeer(users: Record<string, string>): Promise<SmtpPeer> {
  const received: ReceivedMail[] = [];
  let failNext: number | null = null;
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: false,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username && users[auth.username] !== undefined && users[auth.username] === auth.password) {
        callback(null, { user: auth.username });
      } else {
        callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      }
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (failNext !== null) {
          const code = failNext;
          failNext = null;
          callback(Object.assign(new Error(`Refused by the test peer`), { responseCode: code }));
          return;
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        received.push({
          user: session.user as string | undefined,
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          ...parse(raw),
        });
        callback(null);
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    received,
    failNextWith(code) {
      failNext = code;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
