import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataFiles } from '../../server/config/config';
import { workerTokenContext } from '../../server/nodes/store';
import { Vault } from '../../server/vault/envelope';
import { MasterKey } from '../../server/vault/master-key';
import { DockerRunner } from '../../node-manager/sandbox/docker-runner';
import { startWorkerApi } from '../../node-manager/worker-api/server';
import { SANDBOX_IMAGE, ensureSandboxImage, tempDir } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startSmtpPeer, type SmtpPeer } from '../support/smtp-peer';
import { until } from '../support/until';
import { startWebApiPeers, type RecordedRequest, type WebApiPeers } from '../support/web-api-peers';

// Events out through connectors: a user subscribes an instance to events, and CyNode delivers
// each by running one of its operations as that user. Real peers: the web-API stand-in (an http
// connector's webhook), smtp-server (mail), a real Worker API running a real container for the
// completed task, and the real liveness sweep for a lost node.

const TOKEN = 'events-bearer-7c1e4f9a2b3d5e60';
const SMTP_PASSWORD = 'events-smtp-Pa55-91b2c3';

/** A header as a mail client shows it: RFC 2047 Q-encoded words (nodemailer's choice for quotes) decoded. */
function decodedHeader(value: string | undefined): string {
  return (value ?? '')
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?UTF-8\?Q\?([^?]*)\?=/gi, (_w, q: string) => Buffer.from(q.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'));
}

let peers: WebApiPeers;
let smtp: SmtpPeer;
beforeAll(async () => {
  peers = await startWebApiPeers({ mattermost: 'm', discord: 'd', slack: 's', github: 'g' });
  smtp = await startSmtpPeer({ alice: SMTP_PASSWORD });
});
afterAll(async () => {
  await peers?.stop();
  await smtp?.stop();
});

describe.each(DB_KINDS)('events out through connectors on %s', (kind) => {
  let s: TestServer;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  const call = (method: string, path: string, body?: unknown, token = alice.token) => s.api.call(path, { method, token, body });
  const subscribe = (id: string, body: Record<string, unknown>, token = alice.token) => call('POST', `/v1/connectors/${id}/subscriptions`, body, token);

  beforeAll(async () => {
    // Tasks with no node fail at once (no_dispatchable_node); a node silent for 2 s is lost.
    s = await startTestServer(kind, { noNodeGraceSeconds: 0, nodeHeartbeatSeconds: 1, nodeStaleSeconds: 2 });
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
    expect((await call('PUT', '/v1/connectors/egress-allow', { entries: ['127.0.0.1'] }, s.adminToken)).status).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
  });

  /** An http connector posting to the stand-in's echo route under `hooks`. */
  async function webhook(token = alice.token): Promise<string> {
    const c = await call('POST', '/v1/connectors', { type: 'http', name: 'Hooks', config: { base_url: `${peers.url}/echo/hooks` } }, token);
    expect(c.status, c.text).toBe(201);
    expect((await call('POST', `/v1/connectors/${c.body.id}/credentials`, { type: 'bearer_token', secret: { token: TOKEN } }, token)).status).toBe(201);
    return c.body.id;
  }

  const deliveries = async (connectorId: string) =>
    (await call('GET', `/v1/audit?action=connector.event_delivery&resource_id=${connectorId}`, undefined, s.adminToken)).body.events.reverse();

  /** A task of `token`'s user that fails at once: there is no node. */
  async function failingTask(name: string, token = alice.token): Promise<string> {
    const t = await call('POST', '/v1/tasks', { prompt: 'echo never', input_mode: 'commands', task_name: name }, token);
    expect(t.status, t.text).toBe(201);
    await until(`task ${name} to fail`, async () => (await call('GET', `/v1/tasks/${t.body.id}`, undefined, token)).body.status === 'failed');
    return t.body.id;
  }

  const hooksFor = (path: string): RecordedRequest[] => peers.requests.filter((r) => r.path === `/echo/hooks/${path}`);

  it('creates, lists and deletes subscriptions; another user sees none of it', async () => {
    const id = await webhook();
    const created = await subscribe(id, { events: ['task.completed', 'task.failed'], operation: 'request', params: { method: 'POST', path: 'events/{{event}}' } });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ connector_id: id, owner_user_id: alice.id, events: ['task.completed', 'task.failed'], operation: 'request', params: { method: 'POST', path: 'events/{{event}}' } });
    const listed = await call('GET', `/v1/connectors/${id}/subscriptions`);
    expect(listed.body.subscriptions.map((x: { id: string }) => x.id)).toEqual([created.body.id]);

    expect((await call('GET', `/v1/connectors/${id}/subscriptions`, undefined, bob.token)).status).toBe(404);
    expect((await subscribe(id, { events: ['task.failed'], operation: 'request', params: { method: 'POST', path: 'x' } }, bob.token)).status).toBe(404);
    expect((await call('DELETE', `/v1/connectors/${id}/subscriptions/${created.body.id}`, undefined, bob.token)).status).toBe(404);

    expect((await call('DELETE', `/v1/connectors/${id}/subscriptions/${created.body.id}`)).status).toBe(204);
    expect((await call('GET', `/v1/connectors/${id}/subscriptions`)).body.subscriptions).toEqual([]);
    expect((await call('DELETE', `/v1/connectors/${id}/subscriptions/${created.body.id}`)).status).toBe(404);
    const audit = (await call('GET', `/v1/audit?resource_id=${id}`, undefined, s.adminToken)).body.events.map((e: { action: string }) => e.action);
    expect(audit).toEqual(expect.arrayContaining(['connector_subscribed', 'connector_unsubscribed']));
  });

  it('answers 400 for an unknown event, operation or placeholder, and for a template that cannot make valid parameters', async () => {
    const id = await webhook();
    const bad = [
      { events: ['task.exploded'], operation: 'request', params: { method: 'POST', path: 'x' } },
      { events: ['task.failed'], operation: 'send_message', params: {} },
      { events: ['task.failed'], operation: 'request', params: { method: 'POST', path: '{{password}}' } },
      { events: ['task.failed'], operation: 'request', params: { method: 'FETCH', path: 'x' } },
      { events: [], operation: 'request', params: { method: 'POST', path: 'x' } },
    ];
    for (const body of bad) {
      const res = await subscribe(id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    const unknownEvent = await subscribe(id, bad[0]!);
    expect(unknownEvent.body.detail).toContain('task.exploded');
    expect((await call('GET', `/v1/connectors/${id}/subscriptions`)).body.subscriptions).toEqual([]);
  });

  it('keeps node.lost for node managers (403 to a user) and refuses who may not run the operation (403 policy_denied)', async () => {
    const id = await webhook();
    const refused = await subscribe(id, { events: ['node.lost'], operation: 'request', params: { method: 'POST', path: 'x' } });
    expect(refused.status).toBe(403);
    // The admin sees alice's instance but no rule lets them run its operations.
    const admin = await subscribe(id, { events: ['task.failed'], operation: 'request', params: { method: 'POST', path: 'x' } }, s.adminToken);
    expect(admin.status).toBe(403);
    expect(admin.body.code).toBe('policy_denied');
    const own = await webhook(s.adminToken);
    expect((await subscribe(own, { events: ['node.lost'], operation: 'request', params: { method: 'POST', path: 'x' } }, s.adminToken)).status).toBe(201);
    await call('DELETE', `/v1/connectors/${own}`, undefined, s.adminToken);
  });

  it("delivers a failed task (no node) to its creator's webhook, saying it failed, and not another user's task", async () => {
    const id = await webhook();
    const sub = (await subscribe(id, { events: ['task.failed'], operation: 'request', params: { method: 'POST', path: 'failed' } })).body;
    await failingTask(`bobs-task-${kind}`, bob.token);
    const taskId = await failingTask(`nightly-report-${kind}`);
    const hit = await until('the failure to reach the webhook', async () => hooksFor('failed').find((r) => r.body.includes(`nightly-report-${kind}`)));
    const body = JSON.parse(hit.body);
    expect(body).toMatchObject({ event: 'task.failed', task_id: taskId, task_name: `nightly-report-${kind}`, task_status: 'failed' });
    expect(body.text).toContain('failed');
    expect(body.failure_reason).toContain('No node could run this job');
    expect(hit.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(hooksFor('failed').some((r) => r.body.includes(`bobs-task-${kind}`))).toBe(false);

    const audit = await until('the delivery audit', async () => ((await deliveries(id)).length > 0 ? deliveries(id) : null));
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ outcome: 'success', actor_id: alice.id, details: { subscription_id: sub.id, event: 'task.failed', task_id: taskId, attempt: 1 } });
    const history = (await call('GET', `/v1/connectors/${id}/operations`)).body.operations;
    expect(history[0]).toMatchObject({ subject_id: alice.id, operation: 'request', outcome: 'success', task_id: taskId, decision: 'allow' });
    await call('DELETE', `/v1/connectors/${id}/subscriptions/${sub.id}`);
  });

  it('retries a transient failure (the peer answers 503 once): two attempts, each audited', async () => {
    const id = await webhook();
    const sub = (await subscribe(id, { events: ['task.failed'], operation: 'request', params: { method: 'POST', path: 'retried' } })).body;
    peers.failNext(503);
    const taskId = await failingTask(`flaky-${kind}`);
    await until('the second attempt to reach the webhook', async () => hooksFor('retried').find((r) => r.body.includes(taskId)));
    const audit = await until('both attempts audited', async () => {
      const rows = await deliveries(id);
      return rows.length === 2 ? rows : null;
    });
    expect(audit.map((e: { outcome: string; details: { attempt: number } }) => [e.details.attempt, e.outcome])).toEqual([
      [1, 'failure'],
      [2, 'success'],
    ]);
    expect(audit[0].details).toMatchObject({ code: 'transient', status: 503, retried: true, subscription_id: sub.id });
    expect(audit[0].request_id).toBe(audit[1].request_id);
    await call('DELETE', `/v1/connectors/${id}/subscriptions/${sub.id}`);
  });

  it('refuses and audits delivery through an instance its subscriber can no longer use (disabled)', async () => {
    const id = await webhook();
    const sub = (await subscribe(id, { events: ['task.failed'], operation: 'request', params: { method: 'POST', path: 'refused' } })).body;
    expect((await call('POST', `/v1/connectors/${id}/disable`)).body.status).toBe('disabled');
    const seen = peers.requests.length;
    const taskId = await failingTask(`refused-${kind}`);
    const audit = await until('the refusal audited', async () => ((await deliveries(id)).length > 0 ? deliveries(id) : null));
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ outcome: 'failure', details: { code: 'disabled', attempt: 1, retried: false, task_id: taskId, subscription_id: sub.id } });
    expect(peers.requests.slice(seen).filter((r) => r.path.startsWith('/echo/hooks/'))).toEqual([]);
    const history = (await call('GET', `/v1/connectors/${id}/operations`)).body.operations;
    expect(history[0]).toMatchObject({ outcome: 'failure', failure_class: 'disabled', task_id: taskId });
    await call('DELETE', `/v1/connectors/${id}/subscriptions/${sub.id}`);
  });

  it('refuses and audits delivery once a rule forbids the subscriber to run the operation', async () => {
    const id = await webhook();
    const sub = (await subscribe(id, { events: ['task.failed'], operation: 'request', params: { method: 'POST', path: 'forbidden' } })).body;
    const rule = await call('POST', '/v1/policy/rules', { name: 'No connector calls for alice', text: `forbid (principal == User::"${alice.id}", action == Action::"connector.invoke", resource);` }, s.adminToken);
    expect(rule.status, rule.text).toBe(201);
    try {
      const taskId = await failingTask(`forbidden-${kind}`);
      const audit = await until('the refusal audited', async () => ((await deliveries(id)).length > 0 ? deliveries(id) : null));
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ outcome: 'failure', actor_id: alice.id, details: { code: 'policy_denied', attempt: 1, retried: false, task_id: taskId, subscription_id: sub.id } });
      expect(hooksFor('forbidden')).toEqual([]);
      const decisions = (await call('GET', `/v1/audit/access?subject=${alice.id}&action=connector.invoke&decision=deny&task=${taskId}`, undefined, s.adminToken)).body.decisions;
      expect(decisions).toHaveLength(1);
    } finally {
      expect((await call('DELETE', `/v1/policy/rules/${rule.body.id}`, undefined, s.adminToken)).status).toBe(204);
      await call('DELETE', `/v1/connectors/${id}/subscriptions/${sub.id}`);
    }
  });

  describe('with a node', () => {
    let vault: Vault;
    let heartbeat: NodeJS.Timeout | undefined;
    const cleanups: Array<() => Promise<unknown>> = [];
    let nodeId: string;

    beforeAll(async () => {
      await ensureSandboxImage();
      vault = new Vault(await MasterKey.fromFile(dataFiles.masterKey(s.config.dataDir)));
      // A real Worker API running real containers, registered as registration and config ack leave a node.
      const stateDir = await tempDir('cynode-events-node-');
      const token = `worker-token-${randomUUID()}`;
      const runner = new DockerRunner({ instanceId: `events-test-${randomUUID()}`, jobsDir: join(stateDir, 'jobs'), image: SANDBOX_IMAGE });
      const api = await startWorkerApi({ host: '127.0.0.1', port: 0, runner, nodeSlug: 'events', defaultImage: SANDBOX_IMAGE, getBearerToken: () => token, stateDir, logLevel: 'silent', maxConcurrency: 2 });
      cleanups.push(async () => {
        await api.close().catch(() => {});
        await rm(stateDir, { recursive: true, force: true });
      });
      nodeId = randomUUID();
      await s.cynode.db.query(
        `INSERT INTO nodes (id, node_slug, display_name, status, admin_state, worker_api_target_url, worker_api_token_ciphertext, config_version, config_ack_version,
                            config_ack_status, config_ack_at, capability, max_concurrency, last_seen_at)
         VALUES ($1, $2, 'Events box', 'active', 'enabled', $3, $4, 'cfg-1', 'cfg-1', 'applied', now(), $5, 2, now())`,
        [nodeId, `events-node-${kind}`, api.url, vault.seal(token, workerTokenContext(nodeId)), JSON.stringify({ sandbox: { supported: true } })],
      );
      heartbeat = setInterval(() => void s.cynode.db.query('UPDATE nodes SET last_seen_at = now() WHERE id = $1', [nodeId]).catch(() => {}), 300);
    });
    afterAll(async () => {
      clearInterval(heartbeat);
      for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
    });

    it('mails a completed task through an smtp connector, naming the task', async () => {
      const out = await call('POST', '/v1/connectors', { type: 'smtp', name: 'Outbox', config: { host: smtp.host, port: smtp.port, security: 'none', username: 'alice', from: 'cynode@example.org' } });
      expect(out.status, out.text).toBe(201);
      expect((await call('POST', `/v1/connectors/${out.body.id}/credentials`, { type: 'password', secret: { password: SMTP_PASSWORD } })).status).toBe(201);
      const sub = await subscribe(out.body.id, { events: ['task.completed'], operation: 'send_message', params: { to: 'ops@example.org' } });
      expect(sub.status, sub.text).toBe(201);

      const t = await call('POST', '/v1/tasks', { prompt: 'echo hello', input_mode: 'commands', task_name: `backup-${kind}` });
      expect(t.status, t.text).toBe(201);
      const mail = await until('the mail', async () => smtp.received.find((m) => decodedHeader(m.headers.subject).includes(`backup-${kind}`)), 90_000);
      expect((await call('GET', `/v1/tasks/${t.body.id}`)).body.status).toBe('completed');
      expect(mail).toMatchObject({ user: 'alice', to: ['ops@example.org'] });
      expect(decodedHeader(mail.headers.subject)).toBe(`CyNode: task "backup-${kind}" completed`);
      expect(mail.body).toContain(t.body.id);
      expect(mail.body).toContain('completed');
      await call('DELETE', `/v1/connectors/${out.body.id}/subscriptions/${sub.body.id}`);
    });

    it('tells an admin subscribed to node.lost that a node stopped sending heartbeats, and the owner of the task it lost for good', async () => {
      const id = await webhook(s.adminToken);
      const sub = await subscribe(id, { events: ['node.lost'], operation: 'request', params: { method: 'POST', path: 'nodes', body: { text: '{{text}}', node: '{{node_name}}' } } }, s.adminToken);
      expect(sub.status, sub.text).toBe(201);
      const mine = await webhook();
      expect((await subscribe(mine, { events: ['task.failed'], operation: 'request', params: { method: 'POST', path: 'lost' } })).status).toBe(201);
      // A job on its last attempt when the node falls silent is failed by the reaper, not requeued.
      const t = await call('POST', '/v1/tasks', { prompt: 'sleep 20', input_mode: 'commands', task_name: `long-${kind}` });
      expect(t.status, t.text).toBe(201);
      await until('the job to run', async () => (await s.cynode.db.query<{ status: string }>('SELECT status FROM jobs WHERE task_id = $1', [t.body.id]))[0]?.status === 'running');
      await s.cynode.db.query('UPDATE jobs SET max_attempts = attempt WHERE task_id = $1', [t.body.id]);
      clearInterval(heartbeat);

      const hit = await until('the node.lost message', async () => hooksFor('nodes').find((r) => r.body.includes(nodeId)), 30_000);
      expect(JSON.parse(hit.body)).toEqual({ node: 'Events box', text: expect.stringContaining('stopped sending heartbeats') });
      const audit = await until('the delivery audit', async () => ((await deliveries(id)).length > 0 ? deliveries(id) : null));
      expect(audit[0]).toMatchObject({ outcome: 'success', details: { event: 'node.lost', node_id: nodeId, attempt: 1 } });

      const lost = await until('the lost task at its owner', async () => hooksFor('lost').find((r) => r.body.includes(t.body.id)), 30_000);
      expect(JSON.parse(lost.body)).toMatchObject({ event: 'task.failed', task_name: `long-${kind}`, failure_reason: expect.stringContaining('The job was lost') });
    });
  });

  it('leaves no credential in a subscription, an audit row or a delivery history', async () => {
    const rows = await s.cynode.db.query<{ row: string }>(
      `SELECT t::text AS row FROM connector_subscriptions t UNION ALL SELECT a::text FROM audit_events a UNION ALL SELECT o::text FROM connector_operations o`,
    );
    const text = rows.map((r) => r.row).join('\n');
    expect(text).toContain('connector.event_delivery');
    for (const secret of [TOKEN, SMTP_PASSWORD]) expect(text.includes(secret)).toBe(false);
  });
});
