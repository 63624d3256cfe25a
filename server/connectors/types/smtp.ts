import { Type } from '@sinclair/typebox';
import ipaddr from 'ipaddr.js';
import nodemailer from 'nodemailer';
import { ConnectorError, credentialOf, driverOf, NO_RETRY, type HealthContext, type OperationSpec } from './contract';

/** Sending mail through an SMTP submission server. */

const Address = Type.String({ minLength: 3, maxLength: 320, pattern: '^[^\\s<>,;"]+@[^\\s<>,;"]+$' });
const Addresses = Type.Union([Address, Type.Array(Address, { minItems: 1, maxItems: 50 })]);

const SmtpConfig = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 253 }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: 465 })),
    security: Type.Optional(
      Type.Union([Type.Literal('tls'), Type.Literal('starttls'), Type.Literal('none')], {
        description: 'tls: TLS from the first byte (port 465); starttls: required upgrade (port 587); none: no encryption, for servers on a trusted network only',
        default: 'tls',
      }),
    ),
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'Leave out for a server that takes mail without login' })),
    from: Type.String({ minLength: 3, maxLength: 400, description: 'Sender, "Name <address>" or an address' }),
  },
  { additionalProperties: false },
);

const sendMessage: OperationSpec = {
  name: 'send_message',
  title: 'Send a message',
  description: 'Sends a plain-text mail from the configured sender.',
  requestSchema: Type.Object(
    {
      to: Addresses,
      subject: Type.String({ maxLength: 998 }),
      text: Type.String({ maxLength: 1024 * 1024 }),
      cc: Type.Optional(Addresses),
      reply_to: Type.Optional(Address),
    },
    { additionalProperties: false },
  ),
  resultSchema: Type.Object({ message_id: Type.String(), accepted: Type.Array(Type.String()), rejected: Type.Array(Type.String()) }),
  execution: 'sync',
  timeoutMs: 60_000,
  // Once the server has the message a second attempt is a second mail, and a timeout cannot
  // tell whether it has: never repeated.
  idempotent: false,
  retry: NO_RETRY,
};

const NETWORK_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNRESET', 'ECONNREFUSED', 'EPROTOCOL']);

/** Turns what nodemailer throws into a failure a user can act on; SMTP reply codes decide. */
function smtpFailure(e: unknown, signal: AbortSignal): ConnectorError {
  if (e instanceof ConnectorError) return e;
  if (signal.aborted) return new ConnectorError('transient', 'The mail server did not answer in time');
  const err = e as { code?: string; responseCode?: number };
  const details = err.responseCode ? { providerStatus: err.responseCode } : {};
  if (err.code === 'EAUTH' || err.responseCode === 535 || err.responseCode === 534) {
    return new ConnectorError('permanent', 'The mail server refused the username or password; check or rotate the credential', details);
  }
  if (err.code === 'ETLS' || err.code === 'ESTARTTLS') return new ConnectorError('permanent', 'The mail server\'s TLS could not be set up or verified', details);
  if (err.code === 'EENVELOPE') return new ConnectorError('validation_error', 'The mail server refused the sender or every recipient', details);
  if (err.responseCode && err.responseCode >= 400 && err.responseCode < 500) {
    return new ConnectorError('transient', `The mail server deferred the message (${err.responseCode})`, details);
  }
  if (err.responseCode && err.responseCode >= 500) {
    return new ConnectorError('permanent', `The mail server refused the message (${err.responseCode})`, details);
  }
  if (NETWORK_CODES.has(err.code ?? '')) return new ConnectorError('transient', 'The mail server could not be reached', details);
  return new ConnectorError('transient', 'Sending through the mail server failed', details);
}

/** A transport to the checked address of the configured host; TLS verifies the host name. */
async function transportFor(ctx: HealthContext) {
  const host = String(ctx.config.host);
  const security = (ctx.config.security as string | undefined) ?? 'tls';
  const username = ctx.config.username as string | undefined;
  const auth = username ? { user: username, pass: credentialOf(ctx.credential, 'password').password } : undefined;
  const target = await ctx.egress.resolve(host);
  return nodemailer.createTransport({
    host: target.address,
    port: (ctx.config.port as number | undefined) ?? 465,
    secure: security === 'tls',
    requireTLS: security === 'starttls',
    ignoreTLS: security === 'none',
    // TLS checks the certificate against the name the user gave, not the address we dialled.
    servername: ipaddr.isValid(target.host) ? undefined : target.host,
    auth,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
    logger: false,
    debug: false,
  });
}

async function withTransport<T>(ctx: HealthContext, work: (t: Awaited<ReturnType<typeof transportFor>>) => Promise<T>): Promise<T> {
  const transport = await transportFor(ctx);
  // close() on abort leaves nodemailer's pending call unsettled; this turns the abort into a failure.
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      transport.close();
      reject(new Error('aborted'));
    };
  });
  aborted.catch(() => {});
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (ctx.signal.aborted) throw new ConnectorError('transient', 'The mail server did not answer in time');
    return await Promise.race([work(transport), aborted]);
  } catch (e) {
    throw smtpFailure(e, ctx.signal);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    transport.close();
  }
}

function list(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

export const smtpDriver = driverOf(
  {
    type: 'smtp',
    title: 'Mail sending (SMTP)',
    description: 'Send plain-text mail through an SMTP submission server. Sending is not idempotent and never retried.',
    configSchema: SmtpConfig,
    credentialTypes: ['password'],
    credentialRequired: false,
    operations: [sendMessage],
  },
  {
    send_message: (ctx, p) =>
      withTransport(ctx, async (transport) => {
        const info = await transport.sendMail({
          from: String(ctx.config.from),
          to: list(p.to),
          cc: list(p.cc),
          replyTo: p.reply_to as string | undefined,
          subject: String(p.subject),
          text: String(p.text),
          // Only what the operation gives: no file or URL content nodemailer could fetch.
          disableFileAccess: true,
          disableUrlAccess: true,
        });
        return {
          message_id: String(info.messageId ?? ''),
          accepted: [...(info.accepted ?? [])],
          rejected: [...(info.rejected ?? [])],
        };
      }),
  },
  async (ctx) => {
    await withTransport(ctx, (transport) => transport.verify());
  },
);
