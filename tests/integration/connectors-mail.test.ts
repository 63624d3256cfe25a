import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressGuard, egressFromEnvironment, parseAllowList } from '../../server/connectors/egress';
import {
  operationOf,
  type ConnectorDriver,
  type CredentialSecret,
} from '../../server/connectors/types/contract';
import { imapDriver } from '../../server/connectors/types/imap';
import { smtpDriver } from '../../server/connectors/types/smtp';
import { DOVECOT_BINARY, startDovecot, type Dovecot } from '../support/dovecot';
import { startSmtpPeer, type SmtpPeer } from '../support/smtp-peer';
import { connectorFailure, invokeDriver } from '../support/connector-calls';

// The drivers against real mail servers on this machine: Debian's Dovecot for IMAP and
// smtp-server for SMTP. No database is involved.

const IMAP_PASSWORD = 'imap-Pa55word-never-shown';
const SMTP_PASSWORD = 'smtp-Pa55word-never-shown';
// The local peers are allowed the way an installation allows its own: by CYNODE_CONNECTOR_ALLOW.
const localPeers = egressFromEnvironment({ CYNODE_CONNECTOR_ALLOW: '127.0.0.1' });

const invoke = (
  driver: ConnectorDriver,
  config: Record<string, unknown>,
  credential: CredentialSecret | null,
  operation: string,
  params: Record<string, unknown>,
  egress = localPeers,
) => invokeDriver(driver, egress, config, credential, operation, params);

const failure = connectorFailure;

const PLAIN = [
  'From: Bob Sender <bob@example.org>',
  'To: alice@example.org',
  'Subject: First plain message',
  'Date: Fri, 04 Dec 2026 09:00:00 +0000',
  'Message-ID: <m1@example.org>',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hello Alice,',
  'this is the first message.',
  '',
].join('\r\n');

const HTML = [
  'From: news@example.org',
  'To: alice@example.org',
  'Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe_in_HTML?=',
  'Date: Fri, 04 Dec 2026 10:00:00 +0000',
  'MIME-Version: 1.0',
  'Content-Type: text/html; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  '<html><body><h1>Weekly</h1><p>Gr=C3=BC=C3=9Fe from <b>the</b> newsletter.</p><script>evil()</script></body></html>',
  '',
].join('\r\n');

const MULTIPART = [
  'From: Carol <carol@example.org>',
  'To: alice@example.org',
  'Cc: dave@example.org',
  'Subject: Report attached',
  'Date: Fri, 04 Dec 2026 11:00:00 +0000',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="outer"',
  '',
  '--outer',
  'Content-Type: multipart/alternative; boundary="inner"',
  '',
  '--inner',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'The report is attached.',
  '--inner',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>The report is <i>attached</i>.</p>',
  '--inner--',
  '--outer',
  'Content-Type: application/pdf; name="report.pdf"',
  'Content-Disposition: attachment; filename="report.pdf"',
  'Content-Transfer-Encoding: base64',
  '',
  'JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==',
  '--outer--',
  '',
].join('\r\n');

describe.skipIf(!existsSync(DOVECOT_BINARY))('imap connector against Dovecot', () => {
  let dovecot: Dovecot;
  let config: Record<string, unknown>;
  const credential: CredentialSecret = { type: 'password', password: IMAP_PASSWORD };

  beforeAll(async () => {
    dovecot = await startDovecot({ alice: IMAP_PASSWORD });
    for (const raw of [PLAIN, HTML, MULTIPART]) await dovecot.deliver('alice', raw);
    for (let i = 1; i <= 3; i++) {
      await dovecot.deliver('alice', `From: list@example.org\r\nSubject: Archived ${i}\r\n\r\nold ${i}\r\n`, 'Archive');
    }
    config = { host: dovecot.host, port: dovecot.port, security: 'none', username: 'alice' };
  });
  afterAll(async () => {
    await dovecot?.stop();
  });

  it('lists messages newest first and pages back with next_before_uid', async () => {
    const first = await invoke(imapDriver, config, credential, 'list_messages', { limit: 2 });
    const messages = first.messages as { uid: number; subject: string; from: string; seen: boolean }[];
    expect(messages.map((m) => m.subject)).toEqual(['Report attached', 'Grüße in HTML']);
    expect(messages[0]!.from).toBe('Carol <carol@example.org>');
    expect(first.next_before_uid).toBe(messages[1]!.uid);

    const second = await invoke(imapDriver, config, credential, 'list_messages', { limit: 2, before_uid: first.next_before_uid });
    expect((second.messages as { subject: string }[]).map((m) => m.subject)).toEqual(['First plain message']);
    expect(second.next_before_uid).toBeUndefined();

    const archive = await invoke(imapDriver, config, credential, 'list_messages', { mailbox: 'Archive' });
    expect((archive.messages as { subject: string }[]).map((m) => m.subject)).toEqual(['Archived 3', 'Archived 2', 'Archived 1']);
  });

  it('reads a plain message, an HTML one as text, and the text part of a multipart one', async () => {
    const list = (await invoke(imapDriver, config, credential, 'list_messages', {})).messages as { uid: number; subject: string }[];
    const uidOf = (subject: string): number => list.find((m) => m.subject === subject)!.uid;

    const plain = await invoke(imapDriver, config, credential, 'read_message', { uid: uidOf('First plain message') });
    expect(plain).toMatchObject({ subject: 'First plain message', from: 'Bob Sender <bob@example.org>', to: ['alice@example.org'], truncated: false });
    expect(plain.text).toBe('Hello Alice,\nthis is the first message.\n');
    expect(plain.date).toBe('2026-12-04T09:00:00.000Z');

    const html = await invoke(imapDriver, config, credential, 'read_message', { uid: uidOf('Grüße in HTML') });
    expect(html.text).toContain('Grüße from the newsletter.');
    expect(html.text).not.toContain('<p>');
    expect(html.text).not.toContain('evil()');

    const multi = await invoke(imapDriver, config, credential, 'read_message', { uid: uidOf('Report attached') });
    expect(String(multi.text).trim()).toBe('The report is attached.');
    expect(multi.cc).toEqual(['dave@example.org']);
    expect(multi.attachments).toEqual([{ filename: 'report.pdf', content_type: 'application/pdf', size: expect.any(Number) }]);
  });

  it('reads without marking anything seen', async () => {
    const list = (await invoke(imapDriver, config, credential, 'list_messages', {})).messages as { seen: boolean }[];
    expect(list.every((m) => !m.seen)).toBe(true);
  });

  it('answers a wrong password as a permanent credential failure, without the password', async () => {
    const e = await failure(invoke(imapDriver, config, { type: 'password', password: 'wrong-password' }, 'list_messages', {}));
    expect(e.failure).toBe('permanent');
    expect(e.message).toMatch(/refused the username or password/);
    expect(e.message).not.toContain('wrong-password');
    const health = await imapDriver.health({ config, credential: { type: 'password', password: 'wrong' }, signal: AbortSignal.timeout(10_000), egress: localPeers });
    expect(health).toMatchObject({ ok: false, failure: 'permanent' });
    await expect(imapDriver.health({ config, credential, signal: AbortSignal.timeout(10_000), egress: localPeers })).resolves.toEqual({ ok: true });
  });

  it('classes a missing mailbox, a missing message and bad parameters', async () => {
    expect((await failure(invoke(imapDriver, config, credential, 'list_messages', { mailbox: 'NoSuchBox' }))).failure).toBe('validation_error');
    expect((await failure(invoke(imapDriver, config, credential, 'read_message', { uid: 999 }))).failure).toBe('permanent');
    expect((await failure(invoke(imapDriver, config, credential, 'read_message', { uid: 'x' }))).failure).toBe('validation_error');
    expect((await failure(invoke(imapDriver, config, null, 'list_messages', {}))).failure).toBe('validation_error');
  });

  it('does not reach a loopback server unless it is allowed, and connects to the address a name resolved to', async () => {
    const e = await failure(invoke(imapDriver, config, credential, 'list_messages', {}, new EgressGuard()));
    expect(e.failure).toBe('policy_denied');
    const resolver = async () => [{ address: '127.0.0.1', family: 4 }];
    const named = { ...config, host: 'mail.test' };
    const listed = await invoke(imapDriver, named, credential, 'list_messages', { limit: 1 }, new EgressGuard({ allow: parseAllowList('mail.test'), resolver }));
    expect(listed.messages).toHaveLength(1);
    expect((await failure(invoke(imapDriver, named, credential, 'list_messages', {}, new EgressGuard({ resolver })))).failure).toBe('policy_denied');
  });

  it('answers a server that does not listen as transient', async () => {
    const closed = { ...config, port: 1 };
    expect((await failure(invoke(imapDriver, closed, credential, 'list_messages', {}))).failure).toBe('transient');
  });
});

describe('smtp connector against smtp-server', () => {
  let peer: SmtpPeer;
  let config: Record<string, unknown>;
  const credential: CredentialSecret = { type: 'password', password: SMTP_PASSWORD };

  beforeAll(async () => {
    peer = await startSmtpPeer({ 'cynode@example.org': SMTP_PASSWORD });
    config = { host: peer.host, port: peer.port, security: 'none', username: 'cynode@example.org', from: 'CyNode <cynode@example.org>' };
  });
  afterAll(async () => {
    await peer?.stop();
  });

  it('declares sending as not idempotent and never retried', () => {
    const op = operationOf(smtpDriver, 'send_message');
    expect(op.idempotent).toBe(false);
    expect(op.retry.attempts).toBe(1);
  });

  it('sends a message that arrives under the configured account with its fields', async () => {
    const result = await invoke(smtpDriver, config, credential, 'send_message', {
      to: ['alice@example.org', 'bob@example.org'],
      cc: 'carol@example.org',
      reply_to: 'replies@example.org',
      subject: 'Build finished',
      text: 'The nightly build finished.\nAll green.',
    });
    expect(result.accepted).toEqual(['alice@example.org', 'bob@example.org', 'carol@example.org']);
    expect(result.rejected).toEqual([]);
    expect(result.message_id).toMatch(/^<.+@.+>$/);
    const mail = peer.received.at(-1)!;
    expect(mail.user).toBe('cynode@example.org');
    expect(mail.from).toBe('cynode@example.org');
    expect(mail.to).toEqual(['alice@example.org', 'bob@example.org', 'carol@example.org']);
    expect(mail.headers).toMatchObject({
      from: 'CyNode <cynode@example.org>',
      to: 'alice@example.org, bob@example.org',
      cc: 'carol@example.org',
      'reply-to': 'replies@example.org',
      subject: 'Build finished',
      'message-id': result.message_id,
    });
    expect(mail.body).toContain('The nightly build finished.\r\nAll green.');
    await expect(smtpDriver.health({ config, credential, signal: AbortSignal.timeout(10_000), egress: localPeers })).resolves.toEqual({ ok: true });
  });

  it('keeps a subject with line breaks from adding header fields', async () => {
    await invoke(smtpDriver, config, credential, 'send_message', { to: 'alice@example.org', subject: 'Hi\r\nBcc: eve@example.org', text: 'x' });
    const mail = peer.received.at(-1)!;
    expect(mail.to).toEqual(['alice@example.org']);
    expect(mail.headers.bcc).toBeUndefined();
  });

  it('answers a wrong password as a permanent credential failure, and nothing is sent', async () => {
    const before = peer.received.length;
    const e = await failure(invoke(smtpDriver, config, { type: 'password', password: 'wrong-password' }, 'send_message', { to: 'a@example.org', subject: 's', text: 't' }));
    expect(e.failure).toBe('permanent');
    expect(e.message).toMatch(/refused the username or password/);
    expect(e.message).not.toContain('wrong-password');
    expect(peer.received.length).toBe(before);
  });

  it('classes a deferral as transient and a refusal as permanent, with the reply code', async () => {
    peer.failNextWith(451);
    const deferred = await failure(invoke(smtpDriver, config, credential, 'send_message', { to: 'a@example.org', subject: 's', text: 't' }));
    expect(deferred).toMatchObject({ failure: 'transient', providerStatus: 451 });
    peer.failNextWith(554);
    const refused = await failure(invoke(smtpDriver, config, credential, 'send_message', { to: 'a@example.org', subject: 's', text: 't' }));
    expect(refused).toMatchObject({ failure: 'permanent', providerStatus: 554 });
  });

  it('refuses bad addresses before connecting, and loopback unless allowed', async () => {
    expect((await failure(invoke(smtpDriver, config, credential, 'send_message', { to: 'not an address', subject: 's', text: 't' }))).failure).toBe('validation_error');
    const denied = await failure(invoke(smtpDriver, config, credential, 'send_message', { to: 'a@example.org', subject: 's', text: 't' }, new EgressGuard()));
    expect(denied.failure).toBe('policy_denied');
    const named = new EgressGuard({ allow: parseAllowList('smtp.test'), resolver: async () => [{ address: '127.0.0.1', family: 4 }] });
    await invoke(smtpDriver, { ...config, host: 'smtp.test' }, credential, 'send_message', { to: 'named@example.org', subject: 'by name', text: 't' }, named);
    expect(peer.received.at(-1)!.to).toEqual(['named@example.org']);
  });
});
