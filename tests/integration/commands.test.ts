import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeManager } from '../../node-manager/agent/node-manager';
import { docker, ensureSandboxImage, jobContainers, waitForRunningContainer } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startTestNode } from '../support/nodes';
import { until } from '../support/until';

/*
 * Durable commands on runs, against a real node and real sandboxes: accepted once per command_id,
 * applied by the gateway's runner, each outcome an event in the run's ledger.
 */
describe.each(DB_KINDS)('run commands on %s', (kind) => {
  let s: TestServer;
  let node: NodeManager;
  let stateDir: string;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };

  beforeAll(async () => {
    await ensureSandboxImage();
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1 });
    ({ node, stateDir } = await startTestNode(s, `commands-${kind}`, { inferenceMode: 'disabled' }));
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
  });
  afterAll(async () => {
    await node?.close();
    await s?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  const call = (token: string, path: string, body?: unknown, method?: string) => s.api.call(path, { token, body, method });
  const task = async (token: string, prompt: string, extra: Record<string, unknown> = {}) => (await call(token, '/v1/tasks', { prompt, input_mode: 'commands', ...extra })).body;
  const jobRun = async (token: string, taskId: string) => (await call(token, `/v1/runs?task_id=${taskId}`)).body.runs[0];
  /** A run a client records itself (no job), on a task of its own. */
  const clientRun = async (token: string, extra: Record<string, unknown> = {}) => {
    const t = await task(token, 'true');
    const res = await call(token, '/v1/runs', { task_id: t.id, status: 'running', ...extra });
    expect(res.status).toBe(201);
    return res.body;
  };
  const send = (token: string, runId: string, body: Record<string, unknown>) => call(token, `/v1/runs/${runId}/commands`, body);
  const settled = (token: string, commandId: string) =>
    until(`command ${commandId} to settle`, async () => {
      const c = (await call(token, `/v1/commands/${encodeURIComponent(commandId)}`)).body;
      return c.state !== 'accepted' ? c : null;
    });
  const events = async (token: string, runId: string) => (await call(token, `/v1/runs/${runId}/events?limit=1000`)).body.items as any[];
  const commandEvents = async (token: string, runId: string) => (await events(token, runId)).filter((e) => e.kind === 'command');
  const paused = async (jobId: string) => {
    const [id] = await jobContainers(jobId);
    return id ? (await docker.getContainer(id).inspect()).State.Paused : undefined;
  };

  it('the same command sent twice, even at once, is accepted once and applied once; emit_event shows in the run events', async () => {
    const run = await clientRun(alice.token);
    const body = { command_id: 'emit-1', type: 'emit_event', payload: { name: 'approval', data: { ok: true } } };
    const answers = await Promise.all(Array.from({ length: 5 }, () => send(alice.token, run.id, body)));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    expect(answers.filter((a) => !a.body.duplicate)).toHaveLength(1);
    const first = answers.find((a) => !a.body.duplicate)!.body;
    expect(first).toMatchObject({ command_id: 'emit-1', run_id: run.id, type: 'emit_event', accepted: true, duplicate: false, state: 'accepted' });
    for (const a of answers) expect(a.body.seq).toBe(first.seq);

    const done = await settled(alice.token, 'emit-1');
    expect(done).toMatchObject({ command_id: 'emit-1', run_id: run.id, type: 'emit_event', state: 'applied', reason: null });
    expect(done.applied_at).toEqual(expect.any(String));
    // Sent again after it ran: the first answer, and nothing runs again.
    const again = await send(alice.token, run.id, body);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ duplicate: true, seq: first.seq, state: 'applied' });

    const ledger = await events(alice.token, run.id);
    expect(ledger.filter((e) => e.kind === 'event')).toEqual([expect.objectContaining({ message: 'approval', data: expect.objectContaining({ name: 'approval', data: { ok: true }, command_id: 'emit-1' }) })]);
    expect(ledger.filter((e) => e.kind === 'command').map((e) => e.data)).toEqual([{ command_id: 'emit-1', type: 'emit_event', outcome: 'applied' }]);

    const audit = (await call(s.adminToken, `/v1/audit?action=run_command&resource_id=${run.id}`)).body.events;
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ category: 'admin', outcome: 'success', actor_id: alice.id, details: expect.objectContaining({ command_id: 'emit-1', type: 'emit_event' }) });
  });

  it('cancel through a command stops the container: the task ends canceled, the container is gone, sub-runs end too', async () => {
    const t = await task(alice.token, 'echo started; sleep 60');
    const run = await jobRun(alice.token, t.id);
    await waitForRunningContainer(run.job_id);
    const child = (await call(alice.token, '/v1/runs', { task_id: t.id, parent_run_id: run.id, status: 'running' })).body;

    const res = await send(alice.token, run.id, { command_id: 'cancel-1', type: 'cancel', payload: { reason: 'no longer needed' } });
    expect(res.status).toBe(202);
    expect((await settled(alice.token, 'cancel-1')).state).toBe('applied');

    await until('the task to end', async () => (await call(alice.token, `/v1/tasks/${t.id}`)).body.status === 'canceled');
    await until('the container to be gone', async () => (await jobContainers(run.job_id)).length === 0);
    const ended = await until('the run to end', async () => {
      const r = (await call(alice.token, `/v1/runs/${run.id}`)).body;
      return r.terminal ? r : null;
    });
    expect(ended.status).toBe('canceled');
    expect((await call(alice.token, `/v1/runs/${child.id}`)).body.status).toBe('canceled');
    expect((await commandEvents(alice.token, run.id)).map((e) => e.data)).toEqual([{ command_id: 'cancel-1', type: 'cancel', outcome: 'applied' }]);
  });

  it('pause freezes a running sandbox and resume thaws it; a paused job is not timed out, and completes', async () => {
    // The job runs longer than its timeout in wall time, but most of it paused.
    const t = await task(alice.token, 'echo started; sleep 2; echo finished', { timeout_seconds: 4 });
    const run = await jobRun(alice.token, t.id);
    await until('the first line', async () => (await call(alice.token, `/v1/runs/${run.id}/logs`)).body.entries.length > 0);

    expect((await send(alice.token, run.id, { command_id: 'pause-1', type: 'pause', payload: { reason: 'inspecting' } })).status).toBe(202);
    expect((await settled(alice.token, 'pause-1')).state).toBe('applied');
    expect(await paused(run.job_id)).toBe(true);
    expect((await call(alice.token, `/v1/runs/${run.id}`)).body).toMatchObject({ paused: true, pause_reason: 'inspecting', status: 'running' });
    // Held past the job's whole timeout: the node's clock must stand still meanwhile.
    await new Promise((r) => setTimeout(r, 5000));
    expect(await paused(run.job_id)).toBe(true);

    expect((await send(alice.token, run.id, { command_id: 'resume-1', type: 'resume' })).status).toBe(202);
    expect((await settled(alice.token, 'resume-1')).state).toBe('applied');
    const after = await paused(run.job_id);
    // false while it still runs; gone when it already finished.
    expect(after === false || after === undefined).toBe(true);

    const done = await until('the task to end', async () => {
      const x = (await call(alice.token, `/v1/tasks/${t.id}`)).body;
      return x.closed ? x : null;
    });
    expect(done.status).toBe('completed');
    expect((await call(alice.token, `/v1/tasks/${t.id}/logs`)).body.lines).toEqual(['started', 'finished']);
    const ledger = await events(alice.token, run.id);
    expect(ledger.filter((e) => e.kind === 'status' && e.data.change).map((e) => [e.data.change, e.data.sandbox_frozen])).toEqual([
      ['paused', true],
      ['resumed', false],
    ]);
    expect((await call(alice.token, `/v1/runs/${run.id}`)).body.paused).toBe(false);
  });

  it("a command for another user's run is 404 and nothing is stored", async () => {
    const run = await clientRun(alice.token);
    const res = await send(bob.token, run.id, { command_id: 'sneaky', type: 'cancel' });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect((await send(bob.token, '00000000-0000-4000-8000-000000000000', { command_id: 'sneaky', type: 'cancel' })).status).toBe(404);
    expect((await call(bob.token, '/v1/commands/sneaky')).status).toBe(404);
    // Nothing was stored for bob: the same command_id on his own run is new.
    const own = await clientRun(bob.token);
    expect((await send(bob.token, own.id, { command_id: 'sneaky', type: 'emit_event', payload: { name: 'x' } })).body.duplicate).toBe(false);
    // Commands are read by their sender only; and alice's run was never touched.
    expect((await call(alice.token, '/v1/commands/sneaky')).status).toBe(404);
    expect((await call(alice.token, `/v1/runs/${run.id}`)).body.status).toBe('running');
    expect(await commandEvents(alice.token, run.id)).toEqual([]);
  });

  it('a command the run cannot take is rejected with a reason, in its state and in the ledger', async () => {
    const run = await clientRun(alice.token);
    await send(alice.token, run.id, { command_id: 'resume-early', type: 'resume' });
    await send(alice.token, run.id, { command_id: 'pause-a', type: 'pause' });
    await send(alice.token, run.id, { command_id: 'pause-b', type: 'pause' });
    expect(await settled(alice.token, 'resume-early')).toMatchObject({ state: 'rejected', reason: 'the run is not paused' });
    expect((await settled(alice.token, 'pause-a')).state).toBe('applied');
    expect(await settled(alice.token, 'pause-b')).toMatchObject({ state: 'rejected', reason: 'the run is already paused' });

    expect((await call(alice.token, `/v1/runs/${run.id}`, { status: 'completed' }, 'PATCH')).status).toBe(200);
    await send(alice.token, run.id, { command_id: 'cancel-late', type: 'cancel' });
    const c = await settled(alice.token, 'cancel-late');
    expect(c).toMatchObject({ state: 'rejected', reason: 'the run has already ended (completed)' });
    expect(c.applied_at).toEqual(expect.any(String));
    // Applied in the order sent, each outcome an event.
    expect((await commandEvents(alice.token, run.id)).map((e) => [e.data.command_id, e.data.outcome, e.data.reason])).toEqual([
      ['resume-early', 'rejected', 'the run is not paused'],
      ['pause-a', 'applied', undefined],
      ['pause-b', 'rejected', 'the run is already paused'],
      ['cancel-late', 'rejected', 'the run has already ended (completed)'],
    ]);
    expect((await call(alice.token, `/v1/runs/${run.id}`)).body.status).toBe('completed');
  });

  it('a command accepted by a gateway that died while applying it is applied once its claim runs out', async () => {
    const run = await clientRun(alice.token);
    // What a crashed gateway leaves: the durable insert, claimed by a runner that is gone.
    await s.cynode.db.query(
      `INSERT INTO commands (command_id, subject_id, run_id, type, payload, lease_holder, lease_until)
       VALUES ('orphan-1', $1, $2, 'emit_event', '{"name":"left-behind"}', 'commands:dead-gateway', now() - interval '1 second')`,
      [alice.id, run.id],
    );
    expect(await settled(alice.token, 'orphan-1')).toMatchObject({ state: 'applied' });
    expect((await events(alice.token, run.id)).filter((e) => e.kind === 'event').map((e) => e.message)).toEqual(['left-behind']);
  });

  it('bad input answers 400 problem documents, never 5xx', async () => {
    const run = await clientRun(alice.token);
    const cases: unknown[] = [
      {},
      { type: 'pause' },
      { command_id: '', type: 'pause' },
      { command_id: '   ', type: 'pause' },
      { command_id: 'x'.repeat(201), type: 'pause' },
      { command_id: 'c', type: 'explode' },
      { command_id: 'c', type: 'pause', payload: 'now' },
      { command_id: 'c', type: 'pause', payload: { reason: 7 } },
      { command_id: 'c', type: 'pause', payload: { reasn: 'typo' } },
      { command_id: 'c', type: 'emit_event' },
      { command_id: 'c', type: 'emit_event', payload: { data: 1 } },
      { command_id: 'c', type: 'emit_event', payload: { name: '' } },
      { command_id: 'c', type: 'cancel', surprise: true },
    ];
    for (const body of cases) {
      const res = await call(alice.token, `/v1/runs/${run.id}/commands`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await call(alice.token, '/v1/runs/not-a-uuid/commands', { command_id: 'c', type: 'pause' })).status).toBe(400);
    expect((await call(alice.token, `/v1/commands/${'y'.repeat(201)}`)).status).toBe(400);
    // None of them was stored.
    expect((await call(alice.token, '/v1/commands/c')).status).toBe(404);
  });
});
