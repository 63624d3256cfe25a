import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOVECOT_BINARY, startDovecot, type Dovecot } from '../support/dovecot';
import { DB_KINDS, startTestServer, type ApiResponse, type TestServer } from '../support/harness';
import { startSmtpPeer, type SmtpPeer } from '../support/smtp-peer';
import { until } from '../support/until';
import { startWebApiPeers, type WebApiPeers } from '../support/web-api-peers';

// Operations through the API end to end: the gateway seals credentials for the executor process,
// which runs the drivers against real peers on this machine (the http stand-in, Dovecot,
// smtp-server). Every secret below must reach its peer and nothing else: not the database, not
// an API answer.

const TOKEN_1 = 'first-bearer-4b1d2e9a7c3f5081';
const TOKEN_2 = 'second-bearer-9e8d7c6b5a4f3021';
const IMAP_PASSWORD = 'imap-api-Pa55word-7d3c1b';
const SMTP_PASSWORD = 'smtp-api-Pa55word-2f8e4a';
const BOB_TOKEN = 'bob-own-token-0c9d8e7f';
const SECRETS = [TOKEN_1, TOKEN_2, BOB_TOKEN, IMAP_PASSWORD, SMTP_PASSWORD];

let peers: WebApiPeers;
beforeAll(async () => {
  peers = await startWebApiPeers({ mattermost: 'm', discord: 'd', slack: 's', github: 'g' });
});
afterAll(async () => {
  await peers?.stop();
});

describe.each(DB_KINDS)('connector operations through the API on %s', (kind) => {
  let s: TestServer;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  const answers: ApiResponse[] = [];
  const call = async (method: string, path: string, body?: unknown, token = alice.token) => {
    const res = await s.api.call(path, { method, token, body });
    answers.push(res);
    return res;
  };
  const invoke = (id: string, op: string, body: Record<string, unknown>, token = alice.token) => call('POST', `/v1/connectors/${id}/operations/${op}`, body, token);
  const echo = { method: 'GET', path: 'items' };

  beforeAll(async () => {
    // A small breaker, a fast health check and a low rate limit, so each can be watched within a test.
    s = await startTestServer(kind, { connectorBreakerFailures: 2, connectorHealthSeconds: 1, connectorRatePerMinute: 5 });
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
    // The local peers are allowed the way an admin allows an installation's own services.
    expect((await call('PUT', '/v1/connectors/egress-allow', { entries: ['127.0.0.1'] }, s.adminToken)).status).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
  });

  async function httpConnector(token = alice.token, extra: Record<string, unknown> = {}) {
    const res = await call('POST', '/v1/connectors', { type: 'http', name: 'Echo', config: { base_url: `${peers.url}/echo/api` }, ...extra }, token);
    expect(res.status, res.text).toBe(201);
    return res.body;
  }

  async function addBearer(id: string, token: string, as = alice.token) {
    const res = await call('POST', `/v1/connectors/${id}/credentials`, { type: 'bearer_token', secret: { token } }, as);
    expect(res.status, res.text).toBe(201);
    return res.body;
  }

  it('sends the bearer credential to the peer; a rotation replaces it at once, and the old token is never sent again', async () => {
    const c = await httpConnector();
    const credential = await addBearer(c.id, TOKEN_1);
    expect(credential).toMatchObject({ connector_id: c.id, type: 'bearer_token', version: 1, status: 'active', key_id: expect.any(String) });
    expect(JSON.stringify(credential)).not.toContain(TOKEN_1);

    const first = await invoke(c.id, 'request', { params: echo });
    expect(first.status, first.text).toBe(200);
    expect(first.body).toMatchObject({ result: { status: 200 }, provider_status: 200, attempts: 1, replayed: false, operation_id: expect.any(String) });
    expect(peers.requests.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN_1}`);

    const rotated = await call('POST', `/v1/connectors/${c.id}/credentials/${credential.id}/rotate`, { secret: { token: TOKEN_2 } });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body).toMatchObject({ id: credential.id, version: 2, status: 'active', rotated_at: expect.any(String) });
    const seenBefore = peers.requests.length;
    for (let i = 0; i < 3; i++) expect((await invoke(c.id, 'request', { params: echo })).status).toBe(200);
    const after = peers.requests.slice(seenBefore).map((r) => r.headers.authorization);
    expect(after).toEqual([`Bearer ${TOKEN_2}`, `Bearer ${TOKEN_2}`, `Bearer ${TOKEN_2}`]);
  });

  it('refuses the next call at once after a credential is disabled or revoked, without reaching the peer', async () => {
    for (const verb of ['disable', 'revoke']) {
      const c = await httpConnector();
      const credential = await addBearer(c.id, TOKEN_1);
      expect((await invoke(c.id, 'request', { params: echo })).status).toBe(200);
      const changed = await call('POST', `/v1/connectors/${c.id}/credentials/${credential.id}/${verb}`);
      expect(changed.status).toBe(200);
      expect(changed.body.status).toBe(verb === 'revoke' ? 'revoked' : 'disabled');
      const seen = peers.requests.length;
      const refused = await invoke(c.id, 'request', { params: echo });
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('no_credential');
      expect(peers.requests.length).toBe(seen);
    }
    const revoked = await s.cynode.db.query<{ jwe: string | null }>(`SELECT jwe FROM connector_credentials WHERE status = 'revoked'`);
    expect(revoked.length).toBeGreaterThan(0);
    expect(revoked.every((r) => r.jwe === null)).toBe(true);
  });

  it("keeps a user's instance from others: 404 to another user, 403 policy_denied to an admin who sees it but has no rule to run it", async () => {
    const c = await httpConnector();
    await addBearer(c.id, TOKEN_1);
    expect((await invoke(c.id, 'request', { params: echo }, bob.token)).status).toBe(404);
    const admin = await invoke(c.id, 'request', { params: echo }, s.adminToken);
    expect(admin.status).toBe(403);
    expect(admin.body.code).toBe('policy_denied');
    const history = (await call('GET', `/v1/connectors/${c.id}/operations`)).body.operations;
    expect(history[0]).toMatchObject({ decision: 'deny', failure_class: 'policy_denied', subject_id: expect.any(String) });
  });

  it("does not open a ciphertext copied into another instance's credential row: the call fails, the peer never sees the token", async () => {
    const victim = await httpConnector();
    await addBearer(victim.id, TOKEN_1);
    const thief = await httpConnector(bob.token);
    const planted = await addBearer(thief.id, BOB_TOKEN, bob.token);
    // What someone with write access to the database could do: move a sealed secret to a row they control.
    await s.cynode.db.query(
      `UPDATE connector_credentials SET jwe = (SELECT jwe FROM connector_credentials WHERE instance_id = $1), key_id = (SELECT key_id FROM connector_credentials WHERE instance_id = $1) WHERE id = $2`,
      [victim.id, planted.id],
    );
    const seen = peers.requests.length;
    const refused = await invoke(thief.id, 'request', { params: echo }, bob.token);
    expect(refused.status).toBe(502);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.body).toMatchObject({ code: 'permanent', detail: expect.stringMatching(/cannot be opened/) });
    expect(refused.text).not.toContain(TOKEN_1);
    expect(peers.requests.length).toBe(seen);
    const history = (await call('GET', `/v1/connectors/${thief.id}/operations`, undefined, bob.token)).body.operations;
    expect(history[0]).toMatchObject({ outcome: 'failure', failure_class: 'permanent' });
    // The owner's own call still opens it.
    expect((await invoke(victim.id, 'request', { params: echo })).status).toBe(200);
    expect(peers.requests.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN_1}`);
  });

  it('records the task a call is made for, in the history and the access decision, and only for a task the caller may see', async () => {
    const c = await httpConnector();
    await addBearer(c.id, TOKEN_1);
    const task = (who: { token: string }) => call('POST', '/v1/tasks', { prompt: 'echo for the connector', input_mode: 'commands' }, who.token).then((r) => r.body.id as string);
    const mine = await task(alice);
    const theirs = await task(bob);
    const seen = peers.requests.length;
    const refused = await invoke(c.id, 'request', { params: echo, task_id: theirs });
    expect(refused.status).toBe(404);
    expect(refused.body.detail).toBe('Task not found');
    expect(peers.requests.length).toBe(seen);
    const ran = await invoke(c.id, 'request', { params: echo, task_id: mine });
    expect(ran.status, ran.text).toBe(200);
    const [row] = (await call('GET', `/v1/connectors/${c.id}/operations`)).body.operations;
    expect(row).toMatchObject({ task_id: mine, outcome: 'success' });
    const decisions = (await call('GET', `/v1/audit/access?action=connector.invoke&subject=${alice.id}&limit=5`, undefined, s.adminToken)).body.decisions;
    expect(decisions[0]).toMatchObject({ decision: 'allow', task_id: mine });
  });

  it('lets the members of the owning group run a group-owned instance', async () => {
    const group = (await call('POST', '/v1/groups', { slug: 'team', display_name: 'Team' }, s.adminToken)).body;
    expect((await call('POST', `/v1/groups/${group.id}/members`, { user_id: bob.id }, s.adminToken)).status).toBe(201);
    const c = await httpConnector(s.adminToken, { owner_group_id: group.id });
    await addBearer(c.id, TOKEN_1, s.adminToken);
    const ran = await invoke(c.id, 'request', { params: echo }, bob.token);
    expect(ran.status, ran.text).toBe(200);
    expect(peers.requests.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN_1}`);
    expect((await invoke(c.id, 'request', { params: echo }, alice.token)).status).toBe(404);
  });

  it('answers a replayed idempotency key with the recorded outcome, without calling the peer again', async () => {
    const c = await httpConnector();
    await addBearer(c.id, TOKEN_1);
    const body = { params: { method: 'POST', path: 'orders', body: { n: 1 } }, idempotency_key: 'order-1' };
    const first = await invoke(c.id, 'request', body);
    expect(first.status).toBe(200);
    const seen = peers.requests.length;
    const again = await invoke(c.id, 'request', body);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ operation_id: first.body.operation_id, replayed: true, result: first.body.result });
    expect(peers.requests.length).toBe(seen);
    // Another key runs again.
    expect((await invoke(c.id, 'request', { ...body, idempotency_key: 'order-2' })).body.replayed).toBe(false);
    expect(peers.requests.length).toBe(seen + 1);
  });

  it('turns an instance degraded after consecutive transient failures, fails fast, and brings it back by health check', async () => {
    const c = await httpConnector();
    await addBearer(c.id, TOKEN_1);
    // The peer answers 503 (transient) twice in a row: the breaker (2 here) trips.
    for (let i = 0; i < 2; i++) {
      peers.failNext(503);
      const failed = await invoke(c.id, 'request', { params: { method: 'POST', path: 'orders' } });
      expect(failed.status, failed.text).toBe(503);
      expect(failed.body).toMatchObject({ code: 'transient', operation_id: expect.any(String) });
    }
    const degraded = await call('GET', `/v1/connectors/${c.id}`);
    expect(degraded.body.status).toBe('degraded');
    const seen = peers.requests.length;
    const fast = await invoke(c.id, 'request', { params: echo });
    expect(fast.status).toBe(503);
    expect(fast.body.code).toBe('degraded');
    // The background health check (every second here) finds the peer answering again.
    await until('the health check to restore the instance', async () => (await call('GET', `/v1/connectors/${c.id}`)).body.status === 'active', 15_000);
    expect((await invoke(c.id, 'request', { params: echo })).status).toBe(200);
    expect(peers.requests.length).toBeGreaterThan(seen);
  });

  it('answers 429 quota_exceeded beyond the per-instance rate, without reaching the peer', async () => {
    const c = await httpConnector();
    await addBearer(c.id, TOKEN_1);
    for (let i = 0; i < 5; i++) expect((await invoke(c.id, 'request', { params: echo })).status).toBe(200);
    const seen = peers.requests.length;
    const limited = await invoke(c.id, 'request', { params: echo });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('quota_exceeded');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(peers.requests.length).toBe(seen);
    // Another instance has its own bucket.
    const other = await httpConnector();
    expect((await invoke(other.id, 'request', { params: echo })).status).toBe(200);
  });

  it('shows credential_expired once the credential expires, without waiting for a call to fail', async () => {
    const c = await httpConnector();
    const soon = new Date(Date.now() + 1_500).toISOString();
    expect((await call('POST', `/v1/connectors/${c.id}/credentials`, { type: 'bearer_token', secret: { token: TOKEN_1 }, expires_at: soon })).status).toBe(201);
    expect((await call('GET', `/v1/connectors/${c.id}`)).body.status).toBe('active');
    const seen = peers.requests.length;
    await until('the background check marks it', async () => (await call('GET', `/v1/connectors/${c.id}`)).body.status === 'credential_expired', 10_000);
    expect((await call('GET', `/v1/connectors/${c.id}`)).body.last_error).toMatch(/expired/);
    expect(peers.requests.length).toBe(seen);
  });

  it('turns an instance credential_expired once its credential has expired, and a rotation brings it back', async () => {
    const c = await httpConnector();
    const past = new Date(Date.now() - 60_000).toISOString();
    const credential = (await call('POST', `/v1/connectors/${c.id}/credentials`, { type: 'bearer_token', secret: { token: TOKEN_1 }, expires_at: past })).body;
    expect(credential.expires_at).toBe(past);
    const seen = peers.requests.length;
    const refused = await invoke(c.id, 'request', { params: echo });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('credential_expired');
    expect(peers.requests.length).toBe(seen);
    expect((await call('GET', `/v1/connectors/${c.id}`)).body.status).toBe('credential_expired');
    const rotated = await call('POST', `/v1/connectors/${c.id}/credentials/${credential.id}/rotate`, { secret: { token: TOKEN_2 } });
    expect(rotated.body).toMatchObject({ version: 2, expires_at: null });
    expect((await call('GET', `/v1/connectors/${c.id}`)).body.status).toBe('active');
    expect((await invoke(c.id, 'request', { params: echo })).status).toBe(200);
    expect(peers.requests.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN_2}`);
  });

  it('records each call in the history and each management action in the audit, without a secret', async () => {
    const c = await httpConnector();
    const credential = await addBearer(c.id, TOKEN_1);
    const taskId = (await call('POST', '/v1/tasks', { prompt: 'echo history', input_mode: 'commands' })).body.id as string;
    expect((await invoke(c.id, 'request', { params: echo, task_id: taskId, idempotency_key: 'hist-1' })).status).toBe(200);
    await call('POST', `/v1/connectors/${c.id}/credentials/${credential.id}/rotate`, { secret: { token: TOKEN_2 } });
    await call('POST', `/v1/connectors/${c.id}/credentials/${credential.id}/revoke`);
    const history = await call('GET', `/v1/connectors/${c.id}/operations?limit=1`);
    expect(history.status).toBe(200);
    expect(history.body.operations[0]).toMatchObject({
      request_id: expect.any(String),
      subject_id: alice.id,
      connector_id: c.id,
      operation: 'request',
      decision: 'allow',
      decision_audit_id: expect.any(String),
      outcome: 'success',
      duration_ms: expect.any(Number),
      provider_status: 200,
      attempts: 1,
      retries: 0,
      task_id: taskId,
      idempotency_key: 'hist-1',
      credential_id: credential.id,
      credential_version: 1,
    });
    const audit = await s.cynode.db.query<{ action: string; details: unknown }>(`SELECT action, details FROM audit_events WHERE resource_id = $1 ORDER BY seq`, [c.id]);
    expect(audit.map((a) => a.action)).toEqual(['connector_installed', 'connector_credential_created', 'connector_credential_rotated', 'connector_credential_revoked']);
    expect(audit[2]!.details).toMatchObject({ credential_id: credential.id, type: 'bearer_token', version: 2 });
    const decision = await s.cynode.db.query<{ action: string; decision: string; subject_user_id: string }>('SELECT action, decision, subject_user_id FROM access_audit WHERE id = $1', [
      history.body.operations[0].decision_audit_id,
    ]);
    expect(decision).toEqual([{ action: 'connector.invoke', decision: 'allow', subject_user_id: alice.id }]);
  });

  describe.skipIf(!existsSync(DOVECOT_BINARY))('mail', () => {
    let dovecot: Dovecot;
    let smtp: SmtpPeer;
    beforeAll(async () => {
      dovecot = await startDovecot({ alice: IMAP_PASSWORD });
      await dovecot.deliver('alice', 'From: bob@example.org\r\nTo: alice@example.org\r\nSubject: Through the API\r\n\r\nHello over IMAP.\r\n');
      smtp = await startSmtpPeer({ alice: SMTP_PASSWORD });
    });
    afterAll(async () => {
      await dovecot?.stop();
      await smtp?.stop();
    });

    it('lists and reads mail over IMAP, and sends over SMTP, through the API', async () => {
      const imap = await call('POST', '/v1/connectors', { type: 'imap', name: 'Inbox', config: { host: dovecot.host, port: dovecot.port, security: 'none', username: 'alice' } });
      expect(imap.status, imap.text).toBe(201);
      expect((await call('POST', `/v1/connectors/${imap.body.id}/credentials`, { type: 'password', secret: { password: IMAP_PASSWORD } })).status).toBe(201);
      const list = await invoke(imap.body.id, 'list_messages', { params: {} });
      expect(list.status, list.text).toBe(200);
      const message = list.body.result.messages.find((m: any) => m.subject === 'Through the API');
      expect(message).toBeDefined();
      const read = await invoke(imap.body.id, 'read_message', { params: { uid: message.uid } });
      expect(read.status).toBe(200);
      expect(read.body.result.text).toContain('Hello over IMAP.');

      const out = await call('POST', '/v1/connectors', { type: 'smtp', name: 'Outbox', config: { host: smtp.host, port: smtp.port, security: 'none', username: 'alice', from: 'alice@example.org' } });
      expect(out.status, out.text).toBe(201);
      expect((await call('POST', `/v1/connectors/${out.body.id}/credentials`, { type: 'password', secret: { password: SMTP_PASSWORD } })).status).toBe(201);
      const sent = await invoke(out.body.id, 'send_message', { params: { to: 'carol@example.org', subject: 'Sent through the API', text: 'Hi Carol' } });
      expect(sent.status, sent.text).toBe(200);
      expect(smtp.received.at(-1)).toMatchObject({ user: 'alice', to: ['carol@example.org'] });
      expect(smtp.received.at(-1)!.headers.subject).toBe('Sent through the API');
    });
  });

  it('leaves no plaintext credential in any table or API answer', async () => {
    const tables = await s.cynode.db.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`);
    expect(tables.map((t) => t.table_name)).toContain('connector_credentials');
    for (const { table_name } of tables) {
      const rows = await s.cynode.db.query<{ row: string }>(`SELECT t::text AS row FROM "${table_name}" t`);
      const text = rows.map((r) => r.row).join('\n');
      for (const secret of SECRETS) expect(text.includes(secret), `${secret} in ${table_name}`).toBe(false);
    }
    expect(answers.length).toBeGreaterThan(10);
    for (const a of answers) for (const secret of SECRETS) expect(a.text.includes(secret)).toBe(false);
  });
});
