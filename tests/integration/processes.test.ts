import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeManager } from '../../node-manager/agent/node-manager';
import { docker, ensureSandboxImage, jobContainers } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startTestNode } from '../support/nodes';
import { until } from '../support/until';

const SECRET = 'pr0cess-s3cret-value-7f3a';

/*
 * Background processes in a run's sandbox, on a real node and real containers: a long-sleeping
 * commands task provides the sandbox; processes are started in it, read, terminated, and end with it.
 */
describe.each(DB_KINDS)('background processes in a run sandbox on %s', (kind) => {
  let s: TestServer;
  let node: NodeManager;
  let stateDir: string;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  let task: any;
  let run: any;

  const call = (token: string, path: string, body?: unknown, method?: string) => s.api.call(`${path}`, { token, body, method });
  const processes = (runId: string) => `/v1/runs/${runId}/processes`;
  const ended = (runId: string, pid: string) =>
    until(`process ${pid} to end`, async () => {
      const p = (await call(alice.token, `${processes(runId)}/${pid}`)).body;
      return p.status !== 'running' ? p : null;
    });
  /** What runs in the job's container now, by command line. */
  const ps = async (jobId: string): Promise<string> => {
    const [id] = await jobContainers(jobId);
    const exec = await docker.getContainer(id!).exec({ Cmd: ['ps', '-o', 'pid,args'], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    await new Promise((resolve) => stream.on('end', resolve));
    return Buffer.concat(chunks).toString('latin1');
  };

  beforeAll(async () => {
    await ensureSandboxImage();
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1 });
    ({ node, stateDir } = await startTestNode(s, `procs-${kind}`, { inferenceMode: 'disabled' }));
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
    task = (await call(alice.token, '/v1/tasks', { prompt: 'sleep 30', input_mode: 'commands' })).body;
    run = (await call(alice.token, `/v1/runs?task_id=${task.id}`)).body.runs[0];
    // All a client knows: the run says running. Its sandbox may still be starting; a process
    // started now waits for it rather than being refused.
    await until('the run to be running', async () => (await call(alice.token, `/v1/runs/${run.id}`)).body.status === 'running');
  });
  afterAll(async () => {
    await node?.close();
    await s?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('runs a process in the sandbox: its output, its exit code, and process events in the run ledger', async () => {
    const res = await call(alice.token, processes(run.id), { command: ['sh', '-c', 'echo hi; sleep 1; echo bye; echo oops >&2'] });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ process_id: expect.any(String), status: 'running' });
    const pid = res.body.process_id;

    const p = await ended(run.id, pid);
    expect(p).toMatchObject({ process_id: pid, run_id: run.id, task_id: task.id, job_id: run.job_id, status: 'exited', exit_code: 0, started_by: alice.id, env_names: [] });
    expect(p.command).toEqual(['sh', '-c', 'echo hi; sleep 1; echo bye; echo oops >&2']);
    expect(Date.parse(p.ended_at)).toBeGreaterThanOrEqual(Date.parse(p.started_at));
    const out = (await call(alice.token, `${processes(run.id)}/${pid}/output`)).body;
    expect(out).toEqual({ stdout: 'hi\nbye\n', stderr: 'oops\n', truncated: false });

    const list = (await call(alice.token, processes(run.id))).body.processes;
    expect(list.map((x: any) => [x.process_id, x.status])).toContainEqual([pid, 'exited']);

    const events = await until('the exit in the ledger', async () => {
      const items = (await call(alice.token, `/v1/runs/${run.id}/events?limit=1000`)).body.items.filter((e: any) => e.kind === 'process' && e.data.process_id === pid);
      return items.length === 2 ? items : null;
    });
    expect(events.map((e: any) => e.data)).toEqual([
      { process_id: pid, action: 'started' },
      { process_id: pid, action: 'exited', exit_code: 0 },
    ]);
    const audit = (await call(s.adminToken, `/v1/audit?resource_type=run_process&resource_id=${pid}`)).body.events;
    expect(audit.map((a: any) => a.action).sort()).toEqual(['run.process.exit', 'run.process.start']);
    expect(audit.find((a: any) => a.action === 'run.process.start')).toMatchObject({ actor_id: alice.id, details: expect.objectContaining({ run_id: run.id, task_id: task.id }) });
  });

  it('terminates a process: it is gone from the sandbox, and the job runs on', async () => {
    const pid = (await call(alice.token, processes(run.id), { command: ['sleep', '60'] })).body.process_id;
    await until('the process to run in the sandbox', async () => (await ps(run.job_id)).includes('sleep 60'));
    // Still running: the output comes live from the node, and the run shows it.
    expect((await call(alice.token, `${processes(run.id)}/${pid}`)).body.status).toBe('running');
    expect((await call(alice.token, `/v1/runs/${run.id}`)).body.processes_running).toBe(1);
    expect((await call(alice.token, `${processes(run.id)}/${pid}/output`)).body).toEqual({ stdout: '', stderr: '', truncated: false });

    const res = await call(alice.token, `${processes(run.id)}/${pid}/terminate`, undefined, 'POST');
    expect(res.status).toBe(202);
    expect(res.body.process_id).toBe(pid);
    const p = await ended(run.id, pid);
    expect(p.status).toBe('terminated');
    expect(await ps(run.job_id)).not.toContain('sleep 60');
    // Terminating again changes nothing.
    expect((await call(alice.token, `${processes(run.id)}/${pid}/terminate`, undefined, 'POST')).body).toEqual({ process_id: pid, status: 'terminated' });

    expect((await call(alice.token, `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'running', processes_running: 0 });
    expect((await ps(run.job_id)).includes('sleep 30')).toBe(true);
    const events = (await call(alice.token, `/v1/runs/${run.id}/events?limit=1000`)).body.items.filter((e: any) => e.kind === 'process' && e.data.process_id === pid);
    expect(events.map((e: any) => e.data.action)).toEqual(['started', 'terminated']);
  });

  it('passes env values to the process but never shows or stores them, only their names', async () => {
    const res = await call(alice.token, processes(run.id), { command: ['sh', '-c', 'echo ${#PROC_SECRET}'], env: { PROC_SECRET: SECRET } });
    expect(res.status).toBe(201);
    const pid = res.body.process_id;
    const p = await ended(run.id, pid);
    expect(p).toMatchObject({ status: 'exited', exit_code: 0, env_names: ['PROC_SECRET'] });
    // The process saw the value (its length), no answer shows it.
    const out = await call(alice.token, `${processes(run.id)}/${pid}/output`);
    expect(out.body.stdout).toBe(`${SECRET.length}\n`);
    const answers = [
      res.text,
      (await call(alice.token, `${processes(run.id)}/${pid}`)).text,
      (await call(alice.token, processes(run.id))).text,
      out.text,
      (await call(alice.token, `/v1/runs/${run.id}/events?limit=1000`)).text,
      (await call(s.adminToken, '/v1/audit?resource_type=run_process&limit=200')).text,
    ];
    for (const text of answers) expect(text).not.toContain(SECRET);
    const stored = await s.cynode.db.query<{ row: string }>('SELECT row_to_json(p)::text AS row FROM run_processes p');
    expect(stored.length).toBeGreaterThan(0);
    for (const r of stored) expect(r.row).not.toContain(SECRET);
  });

  it('answers 409 for a run without a running sandbox job, 404 to another user, 400 to bad input', async () => {
    const bare = (await call(alice.token, '/v1/runs', { task_id: task.id, status: 'running' })).body;
    const conflict = await call(alice.token, processes(bare.id), { command: ['true'] });
    expect(conflict.status).toBe(409);
    expect(conflict.headers.get('content-type')).toContain('application/problem+json');
    expect((await call(alice.token, processes(bare.id))).body.processes).toEqual([]);

    const pid = (await call(alice.token, processes(run.id))).body.processes[0].process_id;
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const [path, body, method] of [
      [processes(run.id), { command: ['true'] }, undefined],
      [processes(run.id), undefined, undefined],
      [`${processes(run.id)}/${pid}`, undefined, undefined],
      [`${processes(run.id)}/${pid}/output`, undefined, undefined],
      [`${processes(run.id)}/${pid}/terminate`, undefined, 'POST'],
      [processes(missing), undefined, undefined],
    ] as const) {
      const r = await call(bob.token, path, body, method);
      expect(r.status, path).toBe(404);
    }
    expect((await call(alice.token, `${processes(run.id)}/${missing}`)).status).toBe(404);
    expect((await call(alice.token, `${processes(bare.id)}/${pid}`)).status).toBe(404);

    for (const body of [
      {},
      { command: [] },
      { command: 'echo hi' },
      { command: [''] },
      { command: Array.from({ length: 65 }, () => 'x') },
      { command: ['true'], env: { '1BAD': 'x' } },
      { command: ['true'], env: { OK: 3 } },
      { command: ['true'], extra: 1 },
    ]) {
      const r = await call(alice.token, processes(run.id), body);
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    expect((await call(alice.token, `${processes(run.id)}/not-a-uuid`)).status).toBe(400);
    expect((await call(alice.token, processes('not-a-uuid'))).status).toBe(400);
  });

  it('a process ends with its sandbox: canceling the task marks it terminated, and no new one can start', async () => {
    const pid = (await call(alice.token, processes(run.id), { command: ['sleep', '60'] })).body.process_id;
    await until('the process to run in the sandbox', async () => (await ps(run.job_id)).includes('sleep 60'));
    expect((await call(alice.token, `/v1/tasks/${task.id}/cancel`, undefined, 'POST')).status).toBeLessThan(300);
    await until('the container to be gone', async () => (await jobContainers(run.job_id)).length === 0);

    const p = await ended(run.id, pid);
    expect(p).toMatchObject({ status: 'terminated', reason: expect.stringContaining('sandbox') });
    expect((await call(alice.token, processes(run.id), { command: ['true'] })).status).toBe(409);
  });
});
