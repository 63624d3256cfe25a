import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { commandsArgv, nextFreeName, taskNameBase } from '../../server/tasks/service';
import { NO_INFERENCE_REASON } from '../../server/dispatch/dispatcher';
import { until } from '../support/until';


describe('commands and task names (no server)', () => {
  const sh = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });

  it('runs one line as is', () => {
    expect(commandsArgv('echo hello')).toEqual(['sh', '-c', 'echo hello']);
    expect(commandsArgv('\n  \necho hello\r\n\n')).toEqual(['sh', '-c', 'echo hello']);
    expect(commandsArgv(' \n\t\n')).toBeNull();
  });

  it('runs several lines in order and stops at the first that fails, with its exit code', () => {
    const run = sh(commandsArgv('echo a\nexit 3\necho b')!);
    expect(run.stdout).toBe('a\n');
    expect(run.status).toBe(3);
    const ok = sh(commandsArgv('echo one\n\necho two')!);
    expect(ok.stdout).toBe('one\ntwo\n');
    expect(ok.status).toBe(0);
  });

  it('keeps each line to itself: quotes and separators in one line do not leak into the others', () => {
    const run = sh(commandsArgv(`echo "it's"\nx='a b'; echo "$x"\necho '$HOME' ; false\necho never`)!);
    expect(run.stdout).toBe("it's\na b\n$HOME\n");
    expect(run.status).toBe(1);
  });

  it('normalizes names and makes them unique', () => {
    expect(taskNameBase('  My Task!! ', 'x')).toBe('my-task');
    expect(taskNameBase(undefined, 'Echo Hello!')).toBe('echo-hello');
    expect(taskNameBase('***', 'What is 2+2?')).toBe('what-is-2-2');
    expect(taskNameBase(undefined, '!!!')).toBe('task');
    expect(taskNameBase('a'.repeat(80), 'x')).toHaveLength(60);
    expect(taskNameBase(undefined, 'word '.repeat(40)).length).toBeLessThanOrEqual(60);
    expect(taskNameBase(undefined, '0a1b2c3d-0000-4000-8000-000000000000')).toBe('task-0a1b2c3d-0000-4000-8000-000000000000');
    expect(nextFreeName('deploy', [])).toBe('deploy');
    expect(nextFreeName('deploy', ['deploy'])).toBe('deploy-2');
    expect(nextFreeName('deploy', ['deploy', 'deploy-2', 'deploy-7'])).toBe('deploy-8');
  });
});

describe.each(DB_KINDS)('tasks on %s', (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind);
  });
  afterAll(async () => {
    await s?.close();
  });

  const post = (token: string, body: unknown) => s.api.call('/v1/tasks', { token, body });
  const get = (token: string, path: string) => s.api.call(path, { token });
  const cancel = (token: string, ref: string) => s.api.call(`/v1/tasks/${ref}/cancel`, { token, method: 'POST' });
  const payloadOf = async (taskId: string) => (await s.cynode.db.query<{ kind: string; payload: any }>('SELECT kind, payload FROM jobs WHERE task_id = $1', [taskId]));

  it('creates a task in each input mode: 201, queued, with a unique normalized name', async () => {
    const u = await s.createUser('tina');
    const a = await post(u.token, { prompt: 'Echo Hello!', input_mode: 'commands' });
    expect(a.status).toBe(201);
    expect(a.body).toMatchObject({ status: 'queued', closed: false, task_name: 'echo-hello', input_mode: 'commands', prompt: 'Echo Hello!', created_by: u.id, failure_reason: null, started_at: null, ended_at: null });
    expect(a.body.task_id).toBe(a.body.id);
    const me = await get(u.token, '/v1/users/me');
    expect(a.body.project_id).toBe(me.body.default_project_id);

    const b = await post(u.token, { prompt: 'Echo Hello!', input_mode: 'script' });
    expect(b.status).toBe(201);
    expect(b.body).toMatchObject({ status: 'queued', task_name: 'echo-hello-2', input_mode: 'script' });

    const c = await post(u.token, { prompt: 'What is 2+2?' });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ status: 'queued', task_name: 'what-is-2-2', input_mode: 'prompt' });

    const named = await post(u.token, { prompt: 'echo named', input_mode: 'commands', task_name: 'My Task', timeout_seconds: 30, image: 'cynode-sandbox:test', use_inference: true, use_sba: false });
    expect(named.status).toBe(201);
    expect(named.body.task_name).toBe('my-task');

    // Another user's names are theirs: the same prompt gets the plain name.
    const other = await s.createUser('ursula');
    expect((await post(other.token, { prompt: 'Echo Hello!', input_mode: 'commands' })).body.task_name).toBe('echo-hello');
  });

  it('stores the job the node will run: exact argv, script file, timeout, image, no network', async () => {
    const u = await s.createUser('victor');
    const one = await post(u.token, { prompt: 'echo hello', input_mode: 'commands' });
    const [job] = await payloadOf(one.body.id);
    expect(job!.kind).toBe('sandbox');
    expect(job!.payload.command).toEqual(['sh', '-c', 'echo hello']);
    expect(job!.payload).toMatchObject({ timeout_seconds: 600, network_policy: 'none', image: 'cynode-sandbox:latest' });

    const script = await post(u.token, { prompt: '#!/bin/sh\necho from script\n', input_mode: 'script', timeout_seconds: 42, image: 'registry.lan/sandbox:2' });
    const [sj] = await payloadOf(script.body.id);
    expect(sj!.payload).toEqual({ files: { 'script.sh': '#!/bin/sh\necho from script\n' }, command: ['sh', '/job/script.sh'], timeout_seconds: 42, network_policy: 'none', image: 'registry.lan/sandbox:2' });

    const multi = await post(u.token, { prompt: 'echo a\nexit 3\necho b', input_mode: 'commands' });
    const [mj] = await payloadOf(multi.body.id);
    expect(mj!.payload.command).toEqual(commandsArgv('echo a\nexit 3\necho b'));

    const prompt = await post(u.token, { prompt: 'What is 2+2?' });
    expect((await payloadOf(prompt.body.id))[0]!.kind).toBe('inference');
  });

  it('refuses bad input', async () => {
    const u = await s.createUser('wanda');
    expect((await post(u.token, {})).status).toBe(400);
    expect((await post(u.token, { prompt: '' })).status).toBe(400);
    expect((await post(u.token, { prompt: '   \n ' })).status).toBe(400);
    expect((await post(u.token, { prompt: '\n\n', input_mode: 'commands' })).status).toBe(400);
    expect((await post(u.token, { prompt: 'x', input_mode: 'shell' })).status).toBe(400);
    expect((await post(u.token, { prompt: 'x', timeout_seconds: 0 })).status).toBe(400);
    expect((await post(u.token, { prompt: 'x', timeout_seconds: 10_801 })).status).toBe(400);
    expect((await post(u.token, { prompt: 'x', image: 'bad image; rm -rf /' })).status).toBe(400);
    expect((await post(u.token, { prompt: 'x', use_inference: 'yes' })).status).toBe(400);
    const unknown = await post(u.token, { prompt: 'x', attachments: ['a.txt'] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.detail).toContain('attachments');
    const big = await post(u.token, { prompt: 'é'.repeat(600_000), input_mode: 'commands' });
    expect(big.status).toBe(413);
    expect(big.headers.get('content-type')).toContain('application/problem+json');
  });

  it('reads a task by id and by name, with its result and logs', async () => {
    const u = await s.createUser('xena');
    const t = (await post(u.token, { prompt: 'echo read me', input_mode: 'commands', task_name: 'read-me' })).body;
    const byId = await get(u.token, `/v1/tasks/${t.id}`);
    expect(byId.status).toBe(200);
    expect(byId.body).toMatchObject({ id: t.id, task_name: 'read-me', status: 'queued' });
    const byName = await get(u.token, '/v1/tasks/read-me');
    expect(byName.status).toBe(200);
    expect(byName.body.id).toBe(t.id);
    expect((await get(u.token, '/v1/tasks/no-such-task')).status).toBe(404);
    expect((await get(u.token, '/v1/tasks/0a1b2c3d-0000-4000-8000-000000000000')).status).toBe(404);

    const result = await get(u.token, `/v1/tasks/${t.id}/result`);
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ task_id: t.id, task_name: 'read-me', status: 'queued', stdout: '', stderr: '', exit_code: null, failure_reason: null });
    expect(result.body.jobs).toEqual([expect.objectContaining({ status: 'queued', node_id: null, attempt: 0, result: null, failure_code: null })]);

    const logs = await get(u.token, '/v1/tasks/read-me/logs?stream=stdout');
    expect(logs.status).toBe(200);
    expect(logs.body).toEqual({ task_id: t.id, task_name: 'read-me', stream: 'stdout', stdout: '', stderr: '', lines: [] });
    expect((await get(u.token, `/v1/tasks/${t.id}/logs?stream=both`)).status).toBe(400);
  });

  it('lists newest first, filtered by status and project, page by page', async () => {
    const u = await s.createUser('yuri');
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await post(u.token, { prompt: `echo ${i}`, input_mode: 'commands' })).body.id);
    expect((await cancel(u.token, made[1]!)).status).toBe(200);

    const all = await get(u.token, '/v1/tasks?limit=200');
    expect(all.status).toBe(200);
    expect(all.body.tasks.map((t: { id: string }) => t.id)).toEqual([...made].reverse());
    expect(all.body).not.toHaveProperty('next_cursor');

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await get(u.token, `/v1/tasks?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.tasks.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.tasks.map((t: { id: string }) => t.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...made].reverse());

    const canceled = await get(u.token, '/v1/tasks?status=canceled');
    expect(canceled.body.tasks.map((t: { id: string }) => t.id)).toEqual([made[1]]);
    const queued = await get(u.token, '/v1/tasks?status=queued&limit=2');
    expect(queued.body.tasks.map((t: { id: string }) => t.id)).toEqual([made[4], made[3]]);
    expect(queued.body.next_cursor).toEqual(expect.any(String));

    const me = await get(u.token, '/v1/users/me');
    expect((await get(u.token, `/v1/tasks?project_id=${me.body.default_project_id}&limit=200`)).body.tasks).toHaveLength(5);
    expect((await get(u.token, '/v1/tasks?status=sleeping')).status).toBe(400);
    expect((await get(u.token, '/v1/tasks?cursor=garbage')).status).toBe(400);

    // Someone else's tasks are not in their list, and the admin (who may read every project) sees them.
    const other = await s.createUser('yves');
    expect((await get(other.token, '/v1/tasks?limit=200')).body.tasks.map((t: { id: string }) => t.id)).not.toContain(made[0]);
    expect((await get(s.adminToken, '/v1/tasks?limit=200')).body.tasks.map((t: { id: string }) => t.id)).toContain(made[0]);
  });

  it("answers 404 for another user's task, whatever the operation", async () => {
    const owner = await s.createUser('zack');
    const stranger = await s.createUser('zora');
    const t = (await post(owner.token, { prompt: 'echo private', input_mode: 'commands', task_name: 'private' })).body;
    for (const path of [`/v1/tasks/${t.id}`, `/v1/tasks/${t.id}/result`, `/v1/tasks/${t.id}/logs`]) {
      const res = await get(stranger.token, path);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await cancel(stranger.token, t.id)).status).toBe(404);
    // Names are looked up among the caller's own tasks only.
    expect((await get(stranger.token, '/v1/tasks/private')).status).toBe(404);
    expect((await get(owner.token, `/v1/tasks/${t.id}`)).body.status).toBe('queued');
  });

  it('creates in a named project only where the caller may (404 unseen, 403 viewer)', async () => {
    const owner = await s.createUser('abel');
    const viewer = await s.createUser('bea');
    const project = (await s.api.call('/v1/projects', { token: owner.token, body: { slug: 'abel-lab', display_name: 'Abel lab' } })).body;

    expect((await post(viewer.token, { prompt: 'echo hi', input_mode: 'commands', project_id: project.id })).status).toBe(404);
    expect((await post(viewer.token, { prompt: 'echo hi', input_mode: 'commands', project_id: 'abel-lab' })).status).toBe(404);
    expect((await post(viewer.token, { prompt: 'echo hi', input_mode: 'commands', project_id: 'no-such-project' })).status).toBe(404);

    const grant = await s.api.call('/v1/role-bindings', { token: owner.token, body: { subject_type: 'user', subject_id: viewer.id, role: 'viewer', scope_type: 'project', scope_id: project.id } });
    expect(grant.status).toBe(201);
    const denied = await post(viewer.token, { prompt: 'echo hi', input_mode: 'commands', project_id: 'abel-lab' });
    expect(denied.status).toBe(403);

    const t = await post(owner.token, { prompt: 'echo in lab', input_mode: 'commands', project_id: 'abel-lab' });
    expect(t.status).toBe(201);
    expect(t.body.project_id).toBe(project.id);

    // A viewer reads the project's tasks, but may not cancel them.
    expect((await get(viewer.token, `/v1/tasks/${t.body.id}`)).status).toBe(200);
    expect((await get(viewer.token, `/v1/tasks?project_id=abel-lab`)).body.tasks.map((x: { id: string }) => x.id)).toEqual([t.body.id]);
    expect((await cancel(viewer.token, t.body.id)).status).toBe(403);
    expect((await get(owner.token, `/v1/tasks/${t.body.id}`)).body.status).toBe('queued');
  });

  it('cancels a queued task (idempotently) and its job; a non-creator cancel is audited', async () => {
    const u = await s.createUser('cleo');
    const t = (await post(u.token, { prompt: 'sleep 600', input_mode: 'commands', task_name: 'cancel-me' })).body;
    const first = await cancel(u.token, 'cancel-me');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ task_id: t.id, task_name: 'cancel-me', canceled: true });
    const after = await get(u.token, `/v1/tasks/${t.id}`);
    expect(after.body).toMatchObject({ status: 'canceled', closed: true });
    expect(after.body.ended_at).toEqual(expect.any(String));
    expect((await get(u.token, `/v1/tasks/${t.id}/result`)).body.jobs).toEqual([expect.objectContaining({ status: 'canceled' })]);
    expect((await cancel(u.token, t.id)).status).toBe(200);

    const other = (await post(u.token, { prompt: 'sleep 600', input_mode: 'commands' })).body;
    expect((await cancel(s.adminToken, other.id)).status).toBe(200);
    const audit = await s.api.call(`/v1/audit?action=task_canceled&resource_id=${other.id}`, { token: s.adminToken });
    expect(audit.body.events).toEqual([expect.objectContaining({ category: 'admin', resource_type: 'task', outcome: 'success' })]);
    const own = await s.api.call(`/v1/audit?action=task_canceled&resource_id=${t.id}`, { token: s.adminToken });
    expect(own.body.events).toEqual([]);
  });

  it('fails a prompt task at once with the no-inference reason (never drops it); it cannot be canceled then', async () => {
    const u = await s.createUser('dora');
    const t = (await post(u.token, { prompt: 'What is 2+2?' })).body;
    expect(t.status).toBe('queued');
    const done = await until('the prompt task to fail', async () => {
      const res = await get(u.token, `/v1/tasks/${t.id}`);
      return res.body.closed ? res.body : null;
    });
    expect(done).toMatchObject({ status: 'failed', closed: true, failure_reason: NO_INFERENCE_REASON });
    const result = await get(u.token, `/v1/tasks/${t.id}/result`);
    expect(result.body.jobs).toEqual([expect.objectContaining({ status: 'failed', failure_code: 'no_inference_path' })]);
    expect(result.body.failure_reason).toBe(NO_INFERENCE_REASON);
    const late = await cancel(u.token, t.id);
    expect(late.status).toBe(409);
  });

  it('keeps a commands task queued while no node exists', async () => {
    const u = await s.createUser('emil');
    const t = (await post(u.token, { prompt: 'echo waiting', input_mode: 'commands' })).body;
    // A later task that the dispatcher has certainly looked at (it fails at once) shows that a
    // dispatch round has passed over the first one.
    const probe = (await post(u.token, { prompt: 'probe' })).body;
    await until('a dispatch round', async () => (await get(u.token, `/v1/tasks/${probe.id}`)).body.closed);
    expect((await get(u.token, `/v1/tasks/${t.id}`)).body).toMatchObject({ status: 'queued', closed: false });
  });
});

describe.each(DB_KINDS)('tasks without any node, short grace, on %s', (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind, { noNodeGraceSeconds: 1 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('fails a queued job with no_dispatchable_node once the grace has passed', async () => {
    const t = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'echo hello', input_mode: 'commands' } })).body;
    const done = await until('the task to fail', async () => {
      const res = await s.api.call(`/v1/tasks/${t.id}`, { token: s.adminToken });
      return res.body.closed ? res.body : null;
    });
    expect(done.status).toBe('failed');
    expect(done.failure_reason).toMatch(/^No node could run this job/);
    const result = await s.api.call(`/v1/tasks/${t.id}/result`, { token: s.adminToken });
    expect(result.body.jobs).toEqual([expect.objectContaining({ status: 'failed', failure_code: 'no_dispatchable_node', node_id: null })]);
  });
});
