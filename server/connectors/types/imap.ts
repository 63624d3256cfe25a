import { Type } from '@sinclair/typebox';
import { convert } from 'html-to-text';
import { ImapFlow, type MessageAddressObject, type MessageStructureObject } from 'imapflow';
import ipaddr from 'ipaddr.js';
import { ConnectorError, credentialOf, driverOf, READ_RETRY, type HealthContext, type OperationSpec } from './contract';

/**
 * A mailbox read over IMAP. Mailboxes are opened read-only (EXAMINE), so reading through CyNode
 * never marks a message seen or changes the mailbox.
 */

const MAX_TEXT_BYTES = 512 * 1024;

const Security = Type.Union([Type.Literal('tls'), Type.Literal('starttls'), Type.Literal('none')], {
  description: 'tls: TLS from the first byte (port 993); starttls: upgrade after connecting; none: no encryption, for servers on a trusted network only',
  default: 'tls',
});

const ImapConfig = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 253 }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: 993 })),
    security: Type.Optional(Security),
    username: Type.String({ minLength: 1, maxLength: 320 }),
    mailbox: Type.Optional(Type.String({ minLength: 1, maxLength: 512, default: 'INBOX' })),
  },
  { additionalProperties: false },
);

const Mailbox = Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'Defaults to the configured mailbox' }));

const Summary = Type.Object({
  uid: Type.Integer(),
  subject: Type.String(),
  from: Type.String(),
  date: Type.String(),
  seen: Type.Boolean(),
  size: Type.Integer(),
});

const listMessages: OperationSpec = {
  name: 'list_messages',
  title: 'List messages',
  description: 'Lists messages of a mailbox, newest first. Pass next_before_uid as before_uid for the next page.',
  requestSchema: Type.Object(
    { mailbox: Mailbox, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })), before_uid: Type.Optional(Type.Integer({ minimum: 1 })) },
    { additionalProperties: false },
  ),
  resultSchema: Type.Object({ messages: Type.Array(Summary), next_before_uid: Type.Optional(Type.Integer()) }),
  execution: 'sync',
  timeoutMs: 30_000,
  idempotent: true,
  retry: READ_RETRY,
};

const readMessage: OperationSpec = {
  name: 'read_message',
  title: 'Read a message',
  description: 'Reads one message as plain text (HTML bodies are converted), with its attachments listed but not fetched.',
  requestSchema: Type.Object({ mailbox: Mailbox, uid: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
  resultSchema: Type.Object({
    uid: Type.Integer(),
    subject: Type.String(),
    from: Type.String(),
    to: Type.Array(Type.String()),
    cc: Type.Array(Type.String()),
    date: Type.String(),
    text: Type.String(),
    truncated: Type.Boolean(),
    attachments: Type.Array(Type.Object({ filename: Type.String(), content_type: Type.String(), size: Type.Integer() })),
  }),
  execution: 'sync',
  timeoutMs: 30_000,
  idempotent: true,
  retry: READ_RETRY,
};

function address(a: MessageAddressObject): string {
  return a.name ? `${a.name} <${a.address ?? ''}>` : (a.address ?? '');
}

function isoDate(d: Date | string | undefined): string {
  if (!d) return '';
  const date = d instanceof Date ? d : new Date(d);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

/** Turns what imapflow throws into a failure a user can act on. */
function imapFailure(e: unknown, signal: AbortSignal): ConnectorError {
  if (e instanceof ConnectorError) return e;
  if (signal.aborted) return new ConnectorError('transient', 'The mail server did not answer in time');
  const err = e as { authenticationFailed?: boolean; tlsFailed?: boolean; mailboxMissing?: boolean; serverResponseCode?: string; code?: string };
  if (err.authenticationFailed) return new ConnectorError('permanent', 'The mail server refused the username or password; check or rotate the credential');
  if (err.mailboxMissing || err.serverResponseCode === 'NONEXISTENT') return new ConnectorError('validation_error', 'The mailbox does not exist');
  if (err.tlsFailed || String(err.code ?? '').includes('CERT')) return new ConnectorError('permanent', 'The mail server\'s TLS certificate could not be verified');
  if (err.code === 'ETHROTTLE') return new ConnectorError('transient', 'The mail server is limiting requests');
  return new ConnectorError('transient', 'The mail server could not be reached or failed');
}

/**
 * Connects (through the egress guard, to the checked address), opens `mailbox` read-only, runs
 * `work` and logs out, whatever happens. The signal closes the connection.
 */
async function withMailbox<T>(ctx: HealthContext, mailbox: string | null, work: (client: ImapFlow) => Promise<T>): Promise<T> {
  const password = credentialOf(ctx.credential, 'password').password;
  const host = String(ctx.config.host);
  const security = (ctx.config.security as string | undefined) ?? 'tls';
  const target = await ctx.egress.resolve(host);
  const client = new ImapFlow({
    host: target.address,
    port: (ctx.config.port as number | undefined) ?? 993,
    secure: security === 'tls',
    doSTARTTLS: security === 'starttls' ? true : security === 'none' ? false : undefined,
    // TLS checks the certificate against the name the user gave, not the address we dialled.
    servername: ipaddr.isValid(target.host) ? undefined : target.host,
    auth: { user: String(ctx.config.username), pass: password },
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
  });
  // Errors also arrive as events; the awaited calls below report them.
  client.on('error', () => {});
  const onAbort = (): void => client.close();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (ctx.signal.aborted) throw new ConnectorError('transient', 'The mail server did not answer in time');
    await client.connect();
    if (mailbox === null) return await work(client);
    const lock = await client.getMailboxLock(mailbox, { readOnly: true });
    try {
      return await work(client);
    } finally {
      lock.release();
    }
  } catch (e) {
    throw imapFailure(e, ctx.signal);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    await client.logout().catch(() => client.close());
  }
}

function mailboxOf(ctx: HealthContext, params: Record<string, unknown>): string {
  return (params.mailbox as string | undefined) ?? (ctx.config.mailbox as string | undefined) ?? 'INBOX';
}

/** The part to show as the message text: plain text first, HTML otherwise; never an attachment. */
function textPart(node: MessageStructureObject): { part: string; html: boolean; size: number } | null {
  const candidates: { part: string; html: boolean; size: number }[] = [];
  const walk = (n: MessageStructureObject): void => {
    if (n.childNodes?.length) {
      n.childNodes.forEach(walk);
      return;
    }
    if (n.disposition === 'attachment') return;
    const type = n.type.toLowerCase();
    if (type === 'text/plain' || type === 'text/html') candidates.push({ part: n.part ?? '1', html: type === 'text/html', size: n.size ?? 0 });
  };
  walk(node);
  return candidates.find((c) => !c.html) ?? candidates[0] ?? null;
}

function attachmentsOf(node: MessageStructureObject): { filename: string; content_type: string; size: number }[] {
  const out: { filename: string; content_type: string; size: number }[] = [];
  const walk = (n: MessageStructureObject): void => {
    n.childNodes?.forEach(walk);
    const filename = n.dispositionParameters?.filename ?? n.parameters?.name;
    if (!n.childNodes?.length && (n.disposition === 'attachment' || filename)) {
      out.push({ filename: filename ?? '', content_type: n.type.toLowerCase(), size: n.size ?? 0 });
    }
  };
  walk(node);
  return out;
}

async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

export const imapDriver = driverOf(
  {
    type: 'imap',
    title: 'Mailbox (IMAP)',
    description: 'List and read messages of an IMAP mailbox, read-only.',
    configSchema: ImapConfig,
    credentialTypes: ['password'],
    credentialRequired: true,
    operations: [listMessages, readMessage],
  },
  {
    list_messages: (ctx, p) =>
      withMailbox(ctx, mailboxOf(ctx, p), async (client) => {
        const limit = (p.limit as number | undefined) ?? 20;
        const before = p.before_uid as number | undefined;
        if (before === 1) return { messages: [] };
        const found = await client.search({ uid: before ? `1:${before - 1}` : '1:*' }, { uid: true });
        const uids = (found || []).sort((a, b) => b - a);
        const page = uids.slice(0, limit);
        if (page.length === 0) return { messages: [] };
        const messages = [];
        for await (const m of client.fetch(page.join(','), { uid: true, envelope: true, flags: true, size: true }, { uid: true })) {
          messages.push({
            uid: m.uid,
            subject: m.envelope?.subject ?? '',
            from: (m.envelope?.from ?? []).map(address).join(', '),
            date: isoDate(m.envelope?.date),
            seen: m.flags?.has('\\Seen') ?? false,
            size: m.size ?? 0,
          });
        }
        messages.sort((a, b) => b.uid - a.uid);
        const last = page[page.length - 1];
        return uids.length > limit && last !== undefined ? { messages, next_before_uid: last } : { messages };
      }),

    read_message: (ctx, p) =>
      withMailbox(ctx, mailboxOf(ctx, p), async (client) => {
        const uid = String(p.uid);
        const m = await client.fetchOne(uid, { uid: true, envelope: true, bodyStructure: true }, { uid: true });
        if (!m) throw new ConnectorError('permanent', `There is no message with uid ${uid} in this mailbox`);
        const chosen = m.bodyStructure ? textPart(m.bodyStructure) : null;
        let text = '';
        let truncated = false;
        if (chosen) {
          const download = await client.download(uid, chosen.part, { uid: true, maxBytes: MAX_TEXT_BYTES });
          const body = download.content ? await readAll(download.content) : Buffer.alloc(0);
          // maxBytes counts the part as stored (before transfer decoding), as its size does.
          truncated = chosen.size > MAX_TEXT_BYTES;
          const decoded = body.toString('utf8').replace(/\r\n/g, '\n');
          text = chosen.html ? convert(decoded, { wordwrap: false, selectors: [{ selector: 'img', format: 'skip' }] }) : decoded;
        }
        return {
          uid: m.uid,
          subject: m.envelope?.subject ?? '',
          from: (m.envelope?.from ?? []).map(address).join(', '),
          to: (m.envelope?.to ?? []).map(address),
          cc: (m.envelope?.cc ?? []).map(address),
          date: isoDate(m.envelope?.date),
          text,
          truncated,
          attachments: m.bodyStructure ? attachmentsOf(m.bodyStructure) : [],
        };
      }),
  },
  async (ctx) => {
    await withMailbox(ctx, null, async (client) => {
      await client.noop();
    });
  },
);
