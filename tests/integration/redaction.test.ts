import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/*
 * Secrets outside chat: prompt tasks, run metadata, run log lines, API key names and the chat
 * `model` field are stored (and audited) redacted, like chat messages. Every check also reads the
 * database itself, where a secret must never be in plain text.
 */

const GITHUB = 'ghp_8Zk2Lq9Xw4Vb7Nc1Rt5Ym3Hs6Jd0Fg2Pa4Eo';
const OPENAI = 'sk-proj-Q7x2Lm9Vb4Nc8Zt1Rw6Ys3Kd0Hf5Jg2Pa7Eo4Iu9Ty1Re6Wq3Ds8Fg0Hj5Kl2Zx7Cv4Bn9Mm1';
const STRIPE = 'sk_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGhIj';
const PASSWORD = 'Maple-river482!';
const PEM_BODY = ['MIIEowIBAAKCAQEAq7Zt8Rw1Ys6Kd0Hf5Jg2Pa7Eo4Iu9Ty1Re6Wq3Ds8Fg0Hj5Kl2Zx', 'Cv4Bn9Mm1Qa2Ws4Ed6Rf8Tg0Yh2Uj4Ik6Ol8Pz0Xa2Sc4Dv6Fb8Gn0Hm2Jq4Lw6Ne8'];
const SECRETS = [GITHUB, OPENAI, STRIPE, PASSWORD, ...PEM_BODY];

/** No secret, nor its lower-case spelling (task names are lower case), nor 12 characters of one in a row. */
function expectNoSecret(what: string, value: unknown): void {
  const text = JSON.stringify(value);
  for (const secret of SECRETS) {
    for (let i = 0; i + 12 <= secret.length; i++) {
      const piece = secret.slice(i, i + 12);
      expect(text.includes(piece) || text.toLowerCase().includes(piece.toLowerCase()), `${what} holds part of ${secret.slice(0, 8)}…`).toBe(false);
    }
  }
}

describe.each(DB_KINDS)('secrets outside chat on %s', (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind);
  });
  afterAll(async () => {
    await s?.close();
  });

  const call = (path: string, body?: unknown, method?: string) => s.api.call(path, { token: s.adminToken, body, method });

  it('a prompt task is stored redacted, as it goes to a model; a script runs as given; names never hold a secret', async () => {
    const prompt = await call('/v1/tasks', { prompt: `${GITHUB} is my token, use it to open a PR; the db password=${PASSWORD}` });
    expect(prompt.status).toBe(201);
    expect(prompt.body.prompt).toBe('SECRET_REDACTED is my token, use it to open a PR; the db password=SECRET_REDACTED');
    expectNoSecret('prompt task', prompt.body);

    const script = await call('/v1/tasks', { prompt: `${GITHUB} && git push`, input_mode: 'commands' });
    expect(script.body.prompt).toBe(`${GITHUB} && git push`);
    expectNoSecret('a name taken from a script', script.body.task_name);
    const named = await call('/v1/tasks', { prompt: 'echo hi', input_mode: 'commands', task_name: `deploy ${STRIPE}` });
    expect(named.body.task_name).toBe('deploy-secret-redacted');

    const stored = await s.cynode.db.query<{ name: string; prompt: string; input_mode: string }>('SELECT name, prompt, input_mode FROM tasks WHERE id = ANY($1)', [[prompt.body.id, named.body.id]]);
    expectNoSecret('tasks table', stored);
    expectNoSecret('task names', (await s.cynode.db.query('SELECT name FROM tasks')).map((r: any) => r.name));
  });

  it('run metadata is stored redacted: its strings like messages, the values of credential-named keys whole', async () => {
    const task = (await call('/v1/tasks', { prompt: 'echo metadata', input_mode: 'commands' })).body;
    const metadata = { note: `deployed with ${OPENAI}`, db_password: PASSWORD, retries: 3, steps: ['build', `push ${GITHUB}`], model: 'llama3:8b' };
    const created = await call('/v1/runs', { task_id: task.id, metadata });
    expect(created.status).toBe(201);
    expect(created.body.metadata).toEqual({ note: 'deployed with SECRET_REDACTED', db_password: 'SECRET_REDACTED', retries: 3, steps: ['build', 'push SECRET_REDACTED'], model: 'llama3:8b' });

    const patched = await call(`/v1/runs/${created.body.id}`, { metadata: { apiKey: STRIPE, stage: 'release' } }, 'PATCH');
    expect(patched.status).toBe(200);
    expect(patched.body.metadata).toEqual({ apiKey: 'SECRET_REDACTED', stage: 'release' });
    expectNoSecret('runs table', await s.cynode.db.query('SELECT metadata FROM runs WHERE task_id = $1', [task.id]));
  });

  it('log lines and their data are stored redacted, a private key printed line by line included', async () => {
    const task = (await call('/v1/tasks', { prompt: 'echo logs', input_mode: 'commands' })).body;
    const run = (await call(`/v1/runs?task_id=${task.id}`)).body.runs[0];
    const lines = [`export GITHUB_TOKEN=${GITHUB}`, '-----BEGIN RSA PRIVATE KEY-----', ...PEM_BODY, '-----END RSA PRIVATE KEY-----', 'build ok'];
    const posted = await call(`/v1/runs/${run.id}/logs`, {
      entries: [...lines.map((message) => ({ stream: 'stdout', message })), { stream: 'stderr', message: 'login', data: { user: 'ci', password: PASSWORD, hint: `curl -H "Authorization: Bearer ${OPENAI}"` } }],
    });
    expect(posted.status).toBe(201);

    const logs = (await call(`/v1/runs/${run.id}/logs`)).body.entries;
    expect(logs.map((e: any) => e.message)).toEqual([
      'export GITHUB_TOKEN=SECRET_REDACTED',
      '-----BEGIN RSA PRIVATE KEY-----',
      'SECRET_REDACTED',
      'SECRET_REDACTED',
      '-----END RSA PRIVATE KEY-----',
      'build ok',
      'login',
    ]);
    expect(logs.at(-1).data).toEqual({ user: 'ci', password: 'SECRET_REDACTED', hint: 'curl -H "Authorization: Bearer SECRET_REDACTED"' });
    expectNoSecret('run_events table', await s.cynode.db.query('SELECT message, data FROM run_events WHERE run_id = $1', [run.id]));
  });

  it('an API key named with a secret in it is stored, answered and audited redacted', async () => {
    const created = await call('/v1/api-keys', { name: `ci key ${GITHUB}` });
    expect(created.status).toBe(201);
    expect(created.body.name).toBe('ci key SECRET_REDACTED');
    expect((await call('/v1/api-keys')).body.api_keys.find((k: any) => k.id === created.body.id).name).toBe('ci key SECRET_REDACTED');
    expectNoSecret('api_keys table', await s.cynode.db.query('SELECT name FROM api_keys'));
    expectNoSecret('audit_events table', await s.cynode.db.query(`SELECT details FROM audit_events WHERE action = 'api_key_created'`));
  });

  it('a chat completion audits its model redacted (any text can be sent there)', async () => {
    const requestId = `model-${randomUUID()}`;
    const res = await s.api.call('/v1/chat/completions', { token: s.adminToken, headers: { 'x-request-id': requestId }, body: { model: `gpt-4o ${OPENAI}`, messages: [{ role: 'user', content: 'hi' }] } });
    // No node serves inference in this suite: the request fails, and is audited all the same.
    expect(res.status).toBeGreaterThanOrEqual(400);
    const [audit] = await s.cynode.db.query<{ model: string | null }>('SELECT model FROM chat_audit_log WHERE request_id = $1', [requestId]);
    expect(audit).toEqual({ model: 'gpt-4o SECRET_REDACTED' });
    expectNoSecret('chat_audit_log table', await s.cynode.db.query('SELECT * FROM chat_audit_log'));
  });
});
