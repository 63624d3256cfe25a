import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataFiles } from '../../server/config/config';
import type { Db } from '../../server/db';
import { workerTokenContext } from '../../server/nodes/store';
import { DEFAULT_RULES } from '../../server/policy/default-rules';
import { Vault } from '../../server/vault/envelope';
import { MasterKey } from '../../server/vault/master-key';
import { DockerRunner } from '../../node-manager/sandbox/docker-runner';
import { startWorkerApi, type WorkerApi } from '../../node-manager/worker-api/server';
import { startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { SANDBOX_IMAGE, tempDir } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { until } from '../support/until';

/*
 * Access rules end to end: rules managed through the API decide who sees and uses which model
 * (a real Worker API as the node, the Ollama fixture behind it), and every decision lands in the
 * access audit.
 */

const OPEN_MODEL = 'llama3:8b';
const LAB_MODEL = 'qwen3:8b';

describe.each(DB_KINDS)('access rules on %s', (kind) => {
  let s: TestServer;
  let db: Db;
  let ollama: OllamaFixture;
  let worker: WorkerApi;
  let stateDir: string;
  let heartbeat: NodeJS.Timeout;
  let outsider: { id: string; token: string };
  let member: { id: string; token: string };
  let groupId: string;

  beforeAll(async () => {
    s = await startTestServer(kind);
    db = s.cynode.db;
    const vault = new Vault(await MasterKey.fromFile(dataFiles.masterKey(s.config.dataDir)));
    ollama = await startOllamaFixture({ models: [OPEN_MODEL, LAB_MODEL] });
    stateDir = await tempDir('cynode-policy-node-');
    const token = `worker-token-${randomUUID()}`;
    worker = await startWorkerApi({
      host: '127.0.0.1',
      port: 0,
      runner: new DockerRunner({ instanceId: `policy-test-${randomUUID()}`, jobsDir: join(stateDir, 'jobs'), image: SANDBOX_IMAGE }),
      nodeSlug: 'policy-node',
      defaultImage: SANDBOX_IMAGE,
      getBearerToken: () => token,
      stateDir,
      logLevel: 'silent',
      ollamaUrl: () => ollama.url,
    });
    const nodeId = randomUUID();
    await db.query(
      `INSERT INTO nodes (id, node_slug, status, admin_state, worker_api_target_url, worker_api_token_ciphertext, config_version, config_ack_version,
                          config_ack_status, config_ack_at, capability, max_concurrency, last_seen_at, labels)
       VALUES ($1, 'policy-node', 'active', 'enabled', $2, $3, 'cfg-1', 'cfg-1', 'applied', now(), $4, 2, now(), '[]')`,
      [nodeId, worker.url, vault.seal(token, workerTokenContext(nodeId)), JSON.stringify({ sandbox: { supported: true }, inference: { supported: true, running: true, available_models: [OPEN_MODEL, LAB_MODEL] } })],
    );
    heartbeat = setInterval(() => void db.query('UPDATE nodes SET last_seen_at = now() WHERE id = $1', [nodeId]).catch(() => {}), 500);
    outsider = await s.createUser('outsider');
    member = await s.createUser('labmember');
    const group = await admin('POST', '/v1/groups', { slug: 'lab', display_name: 'Lab' });
    groupId = group.body.id;
    expect((await admin('POST', `/v1/groups/${groupId}/members`, { user_id: member.id })).status).toBeLessThan(300);
  });
  afterAll(async () => {
    clearInterval(heartbeat);
    await s?.close();
    await worker?.close();
    await ollama?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  const admin = (method: string, path: string, body?: unknown) => s.api.call(path, { method, token: s.adminToken, body });
  const models = async (token: string): Promise<string[]> => {
    const res = await s.api.call('/v1/models', { token });
    expect(res.status).toBe(200);
    return res.body.data.map((m: { id: string }) => m.id);
  };
  const complete = (token: string, model: string) => s.api.call('/v1/chat/completions', { token, body: { model, messages: [{ role: 'user', content: 'hello' }] } });
  const addRule = async (name: string, text: string) => {
    const res = await admin('POST', '/v1/policy/rules', { name, text });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; version: number };
  };
  const access = async (query: string) => {
    const res = await admin('GET', `/v1/audit/access?${query}`);
    expect(res.status, res.text).toBe(200);
    return res.body.decisions as any[];
  };

  it('ships the default rules as visible rows, and they keep every signed-in user on every model', async () => {
    const res = await admin('GET', '/v1/policy/rules?limit=200');
    expect(res.status).toBe(200);
    const shipped = res.body.rules.filter((r: any) => r.is_default);
    expect(shipped.map((r: any) => ({ id: r.id, text: r.text, enabled: r.enabled })).sort((a: any, b: any) => a.id.localeCompare(b.id))).toEqual(
      DEFAULT_RULES.map((r) => ({ id: r.id, text: r.text, enabled: r.enabled })).sort((a, b) => a.id.localeCompare(b.id)),
    );
    expect(shipped[0]).toMatchObject({ version: 1, name: expect.any(String), created_by: null });
    expect(await models(outsider.token)).toEqual([OPEN_MODEL, LAB_MODEL]);
    const done = await complete(outsider.token, LAB_MODEL);
    expect(done.status, done.text).toBe(200);
    expect(done.body.choices[0].message.content).toBe('Echo: hello');
  });

  it('refuses rules that do not parse or name what CyNode does not know, naming the problem', async () => {
    const cases: Array<[string, RegExp]> = [
      ['permit (principal, action, resource', /rule is not valid/],
      ['permit (principal, action == Action::"model.fly", resource);', /model\.fly/],
      ['permit (principal, action == Action::"model.use", resource is Spaceship);', /Spaceship/],
      ['permit (principal == ?principal, action, resource);', /template/],
      ['permit (principal, action, resource); forbid (principal, action, resource);', /exactly one policy/],
    ];
    for (const [text, problem] of cases) {
      const res = await admin('POST', '/v1/policy/rules', { name: 'bad', text });
      expect(res.status, text).toBe(400);
      expect(res.body.detail, text).toMatch(problem);
      expect(res.body.problems.length, text).toBeGreaterThan(0);
    }
    expect((await admin('POST', '/v1/policy/rules', { name: 'no text' })).status).toBe(400);
    expect((await admin('PATCH', '/v1/policy/rules/default-model-use', { text: 'forbid (' })).status).toBe(400);
    // The validate route answers the same problems without storing anything.
    for (const [text, problem] of cases) {
      const res = await admin('POST', '/v1/policy/rules/validate', { text });
      expect(res.status, text).toBe(200);
      expect(res.body.valid, text).toBe(false);
      expect(res.body.problems.length, text).toBeGreaterThan(0);
      if (problem.source !== 'rule is not valid') expect(res.body.problems.join('; '), text).toMatch(problem);
    }
    const good = await admin('POST', '/v1/policy/rules/validate', { text: 'permit (principal, action == Action::"model.use", resource);' });
    expect(good.body).toEqual({ valid: true, problems: [] });
    // Nothing was stored.
    expect((await admin('GET', '/v1/policy/rules?limit=200')).body.rules.filter((r: any) => r.name === 'bad')).toEqual([]);
  });

  it('keeps policy routes and the access audit to admins', async () => {
    const t = outsider.token;
    const calls: Array<[string, string, unknown?]> = [
      ['GET', '/v1/policy/rules'],
      ['POST', '/v1/policy/rules', { name: 'x', text: 'permit (principal, action, resource);' }],
      ['POST', '/v1/policy/rules/validate', { text: 'permit (principal, action, resource);' }],
      ['GET', '/v1/policy/rules/default-model-use'],
      ['PATCH', '/v1/policy/rules/default-model-use', { enabled: false }],
      ['DELETE', '/v1/policy/rules/default-model-use'],
      ['POST', '/v1/policy/explain', { subject: { user_id: outsider.id }, action: 'model.use', resource: { type: 'Model', id: OPEN_MODEL } }],
      ['GET', '/v1/audit/access'],
    ];
    for (const [method, path, body] of calls) expect((await s.api.call(path, { method, token: t, body })).status, `${method} ${path}`).toBe(403);
    expect((await s.api.call('/v1/policy/rules')).status).toBe(401);
    expect((await admin('GET', '/v1/policy/rules/default-model-use')).body.enabled).toBe(true);
  });

  it('restricts a model to a group: outsiders neither see nor use it, members do; a forbid beats a permit', async () => {
    const lab = await addRule('Lab model for the lab', `forbid (principal, action == Action::"model.use", resource == Model::"${LAB_MODEL}") unless { principal in Group::"${groupId}" };`);
    expect(await models(outsider.token)).toEqual([OPEN_MODEL]);
    const refused = await complete(outsider.token, LAB_MODEL);
    expect(refused.status).toBe(404);
    expect(refused.body.error.code).toBe('model_not_found');
    // Exactly what a model nobody has answers.
    const unknown = await complete(outsider.token, 'no-such-model:1b');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('model_not_found');
    expect(await models(member.token)).toEqual([OPEN_MODEL, LAB_MODEL]);
    expect((await complete(member.token, LAB_MODEL)).status).toBe(200);
    expect(await models(s.adminToken)).toEqual([OPEN_MODEL]);

    // A permit naming the outsider does not override the forbid.
    const personal = await addRule('Outsider may', `permit (principal == User::"${outsider.id}", action == Action::"model.use", resource == Model::"${LAB_MODEL}");`);
    expect(await models(outsider.token)).toEqual([OPEN_MODEL]);
    const explained = await admin('POST', '/v1/policy/explain', { subject: { user_id: outsider.id }, action: 'model.use', resource: { type: 'Model', id: LAB_MODEL } });
    expect(explained.status, explained.text).toBe(200);
    expect(explained.body).toMatchObject({ decision: 'deny', rules: [lab.id], subject: { user_id: outsider.id, handle: 'outsider', groups: [] } });
    expect(explained.body.considered).toEqual(expect.arrayContaining([lab.id, personal.id, 'default-model-use']));
    const forMember = await admin('POST', '/v1/policy/explain', { subject: { user_id: member.id }, action: 'model.use', resource: { type: 'Model', id: LAB_MODEL } });
    expect(forMember.body).toMatchObject({ decision: 'allow', rules: ['default-model-use'], subject: { groups: [groupId] } });

    // Leaving the group takes the model away at once.
    expect((await admin('DELETE', `/v1/groups/${groupId}/members/${member.id}`)).status).toBeLessThan(300);
    expect(await models(member.token)).toEqual([OPEN_MODEL]);
    expect((await admin('POST', `/v1/groups/${groupId}/members`, { user_id: member.id })).status).toBeLessThan(300);
    expect(await models(member.token)).toEqual([OPEN_MODEL, LAB_MODEL]);

    // Every one of those decisions is in the access audit, with the rules that made it.
    const denied = await access(`subject=${outsider.id}&decision=deny&resource_id=${encodeURIComponent(LAB_MODEL)}`);
    expect(denied.length).toBeGreaterThanOrEqual(3);
    expect(denied[0]).toMatchObject({ action: 'model.use', resource: { type: 'Model', id: LAB_MODEL }, decision: 'deny', rules: [lab.id], subject: { user_id: outsider.id, handle: 'outsider' } });
    const allowed = await access(`subject=${member.id}&decision=allow&action=model.use&resource_id=${encodeURIComponent(LAB_MODEL)}`);
    expect(allowed[0]).toMatchObject({ decision: 'allow', rules: ['default-model-use'], subject: { groups: [groupId] } });
    expect((await access(`rule=${lab.id}`)).every((d) => d.rules.includes(lab.id) && d.decision === 'deny')).toBe(true);

    // Changing a rule: a stale version is refused, the current one and a bare write are taken.
    expect((await admin('PATCH', `/v1/policy/rules/${lab.id}`, { enabled: false, version: lab.version + 5 })).status).toBe(409);
    const off = await admin('PATCH', `/v1/policy/rules/${lab.id}`, { enabled: false, version: lab.version });
    expect(off.status, off.text).toBe(200);
    expect(off.body).toMatchObject({ enabled: false, version: lab.version + 1 });
    expect(await models(outsider.token)).toEqual([OPEN_MODEL, LAB_MODEL]);
    expect((await admin('PATCH', `/v1/policy/rules/${lab.id}`, { enabled: true })).body.version).toBe(lab.version + 2);
    expect(await models(outsider.token)).toEqual([OPEN_MODEL]);
    for (const id of [lab.id, personal.id]) expect((await admin('DELETE', `/v1/policy/rules/${id}`)).status).toBe(204);
    expect((await admin('GET', `/v1/policy/rules/${lab.id}`)).status).toBe(404);
    expect(await models(outsider.token)).toEqual([OPEN_MODEL, LAB_MODEL]);

    // The management actions are in the audit trail.
    for (const action of ['policy_rule_created', 'policy_rule_updated', 'policy_rule_deleted']) {
      const events = (await admin('GET', `/v1/audit?action=${action}&resource_id=${lab.id}`)).body.events;
      expect(events.length, action).toBeGreaterThan(0);
      expect(events[0]).toMatchObject({ category: 'admin', actor_handle: 'admin', resource_type: 'policy_rule' });
    }
  });

  it('pages through the access audit and filters it by time', async () => {
    const first = await admin('GET', `/v1/audit/access?subject=${outsider.id}&limit=2`);
    expect(first.body.decisions).toHaveLength(2);
    const second = await admin('GET', `/v1/audit/access?subject=${outsider.id}&limit=2&cursor=${first.body.next_cursor}`);
    expect(second.status).toBe(200);
    expect(second.body.decisions[0].id).not.toBe(first.body.decisions[1].id);
    expect(Date.parse(second.body.decisions[0].at)).toBeLessThanOrEqual(Date.parse(first.body.decisions[1].at));
    expect(await access(`subject=${outsider.id}&since=${new Date(Date.now() + 60_000).toISOString()}`)).toEqual([]);
    expect((await access(`subject=${outsider.id}&until=${new Date(Date.now() + 60_000).toISOString()}`)).length).toBeGreaterThan(0);
    expect((await admin('GET', '/v1/audit/access?cursor=nonsense')).status).toBe(400);
    expect((await admin('GET', '/v1/audit/access?decision=maybe')).status).toBe(400);
  });

  it('explains for an agent and for connector operations, and answers 404 for an unknown user', async () => {
    const connector = { id: 'inbox-1', type: 'imap', owner_user: member.id };
    const owner = await admin('POST', '/v1/policy/explain', { subject: { user_id: member.id }, action: 'connector.invoke', resource: { type: 'Operation', name: 'list', connector } });
    expect(owner.body).toMatchObject({ decision: 'allow', rules: ['default-connector-owner'] });
    const other = await admin('POST', '/v1/policy/explain', { subject: { user_id: outsider.id }, action: 'connector.invoke', resource: { type: 'Operation', name: 'list', connector } });
    expect(other.body).toMatchObject({ decision: 'deny', rules: [], reason: expect.stringContaining('default deny') });
    const agent = await admin('POST', '/v1/policy/explain', { subject: { user_id: member.id, agent: { id: 'pma-1', role: 'pma' } }, action: 'model.use', resource: { type: 'Model', id: OPEN_MODEL } });
    expect(agent.body.passes.map((p: any) => p.who)).toEqual(['user', 'agent']);
    expect((await admin('POST', '/v1/policy/explain', { subject: { user_id: randomUUID() }, action: 'model.use', resource: { type: 'Model', id: OPEN_MODEL } })).status).toBe(404);
    expect((await admin('POST', '/v1/policy/explain', { subject: { user_id: member.id }, action: 'model.fly', resource: { type: 'Model', id: OPEN_MODEL } })).status).toBe(400);
    // Explaining does nothing, so it is not in the access audit.
    expect(await access('resource_id=inbox-1%2Flist')).toEqual([]);
  });

  it("runs a prompt task only on a model its creator may use: a named one refused like chat, none named pinned to a usable one", async () => {
    const rule = await addRule('Outsider off the open model', `forbid (principal == User::"${outsider.id}", action == Action::"model.use", resource == Model::"${OPEN_MODEL}");`);
    const task = (model?: string) => s.api.call('/v1/tasks', { token: outsider.token, body: { prompt: 'Say hello', ...(model ? { model } : {}) } });
    const refused = await task(OPEN_MODEL);
    expect(refused.status).toBe(404);
    expect(refused.body).toMatchObject({ code: 'model_not_found' });
    // The node's first model is the forbidden one: with none named, the task must not fall back to it.
    const created = await task();
    expect(created.status, created.text).toBe(201);
    let result: any;
    await until('the prompt task ends', async () => {
      result = await s.api.call(`/v1/tasks/${created.body.id}/result`, { token: outsider.token });
      return ['completed', 'failed'].includes(result.body.status);
    }, 30_000);
    expect(result.body.status, result.text).toBe('completed');
    expect(JSON.stringify(result.body)).toContain(LAB_MODEL);
    expect(JSON.stringify(result.body)).not.toContain(OPEN_MODEL);
    const decided = await access(`subject=${outsider.id}&decision=deny&resource_id=${encodeURIComponent(OPEN_MODEL)}`);
    expect(decided[0]).toMatchObject({ action: 'model.use', rules: [rule.id] });
    // With every model kept from them, a task without a model is refused rather than left to the node's choice.
    const all = await addRule('Outsider off the lab model', `forbid (principal == User::"${outsider.id}", action == Action::"model.use", resource == Model::"${LAB_MODEL}");`);
    expect((await task()).body).toMatchObject({ status: 404, code: 'model_not_found' });
    for (const r of [rule, all]) expect((await admin('DELETE', `/v1/policy/rules/${r.id}`)).status).toBe(204);
    expect((await task(OPEN_MODEL)).status).toBe(201);
  });

  it('follows rules and memberships changed by another process, through the database', async () => {
    const sees = (token: string, want: string[]) => until(`models ${want.join(',')}`, async () => JSON.stringify(await models(token)) === JSON.stringify(want), 10_000);
    await db.query(`INSERT INTO policy_rules (id, name, text) VALUES ('elsewhere', 'Written elsewhere', $1)`, [
      `forbid (principal, action == Action::"model.use", resource == Model::"${LAB_MODEL}") unless { principal in Group::"${groupId}" };`,
    ]);
    await sees(outsider.token, [OPEN_MODEL]);
    await sees(member.token, [OPEN_MODEL, LAB_MODEL]);
    await db.query('UPDATE group_memberships SET is_active = false WHERE user_id = $1', [member.id]);
    await sees(member.token, [OPEN_MODEL]);
    await db.query('UPDATE group_memberships SET is_active = true WHERE user_id = $1', [member.id]);
    await sees(member.token, [OPEN_MODEL, LAB_MODEL]);
    await db.query(`DELETE FROM policy_rules WHERE id = 'elsewhere'`);
    await sees(outsider.token, [OPEN_MODEL, LAB_MODEL]);
  });

  it('denies model use to everyone once the default rule is deleted', async () => {
    expect((await admin('DELETE', '/v1/policy/rules/default-model-use')).status).toBe(204);
    expect(await models(outsider.token)).toEqual([]);
    const refused = await complete(member.token, OPEN_MODEL);
    expect(refused.status).toBe(404);
    expect(refused.body.error.code).toBe('model_not_found');
    const [last] = await access(`subject=${member.id}&limit=1`);
    expect(last).toMatchObject({ decision: 'deny', rules: [], reason: expect.stringContaining('default deny') });
    expect((await admin('GET', '/v1/policy/rules/default-model-use')).status).toBe(404);
    // Put back by hand, it works again (as an ordinary rule now).
    await addRule('Everyone uses every model', DEFAULT_RULES[0]!.text);
    expect(await models(outsider.token)).toEqual([OPEN_MODEL, LAB_MODEL]);
  });
});
