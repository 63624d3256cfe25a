import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeManager } from '../../node-manager/agent/node-manager';
import { ensureSandboxImage } from '../support/docker';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { startTestNode } from '../support/nodes';
import { openSse, type SseFrame } from '../support/sse';
import { until } from '../support/until';

/*
 * A task's run on a real node and a real sandbox: its output reaches the run ledger line by line,
 * and a client that keeps dropping its stream still ends with every event exactly once.
 */
describe.each(DB_KINDS)('run streams from a real sandbox on %s', (kind) => {
  let s: TestServer;
  let node: NodeManager;
  let stateDir: string;

  beforeAll(async () => {
    await ensureSandboxImage();
    s = await startTestServer(kind, { nodeHeartbeatSeconds: 1 });
    ({ node, stateDir } = await startTestNode(s, `runs-${kind}`, { inferenceMode: 'disabled' }));
  });
  afterAll(async () => {
    await node?.close();
    await s?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  const replay = async (runId: string) => {
    const items: any[] = [];
    let after = 0;
    for (;;) {
      const page = (await s.api.call(`/v1/runs/${runId}/events?after=${after}&limit=13`, { token: s.adminToken })).body;
      if (page.items.length === 0) return items;
      items.push(...page.items);
      after = page.next_after;
    }
  };

  it('a client reconnecting three times with Last-Event-ID gets the complete, ordered sequence once', async () => {
    const script = 'i=1; while [ $i -le 50 ]; do echo "line $i"; sleep 0.05; i=$((i+1)); done; echo done >&2';
    const task = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: script, input_mode: 'script' } })).body;
    const run = (await s.api.call(`/v1/runs?task_id=${task.id}`, { token: s.adminToken })).body.runs[0];
    expect(run).toMatchObject({ task_id: task.id, job_id: expect.any(String) });

    const received: Array<{ id: string; seq: number; event: any }> = [];
    let done: any;
    let lastId: string | undefined;
    // Each connection takes this many events before the client drops it; the last one runs to `done`.
    const budgets = [2, 15, 15, Infinity];
    for (const budget of budgets) {
      let taken = 0;
      const sse = await openSse(`${s.api.baseUrl}/v1/runs/${run.id}/events/stream?heartbeat_seconds=1`, {
        token: s.adminToken,
        lastEventId: lastId,
        onFrame: (f: SseFrame) => {
          if (f.event === 'done') {
            done = JSON.parse(f.data);
            return;
          }
          const data = JSON.parse(f.data);
          received.push({ id: f.id!, seq: data.seq, event: data.event });
          lastId = f.id;
          taken++;
          return taken < budget;
        },
      });
      expect(sse.status).toBe(200);
      await sse.ended;
    }

    expect(done).toMatchObject({ run_id: run.id, status: 'completed' });
    const seqs = received.map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(received.map((r) => r.id)).toEqual(seqs.map(String));
    expect(done.last_seq).toBe(seqs.length);

    const ledger = await replay(run.id);
    expect(received.map((r) => r.event)).toEqual(ledger);
    const lines = ledger.filter((e) => e.kind === 'log');
    expect(lines.filter((e) => e.stream === 'stdout').map((e) => e.message)).toEqual(Array.from({ length: 50 }, (_, i) => `line ${i + 1}`));
    expect(lines.filter((e) => e.stream === 'stderr').map((e) => e.message)).toEqual(['done']);
    const statuses = ledger.filter((e) => e.kind === 'status').map((e) => e.data.status);
    expect(statuses).toEqual(['pending', 'running', 'completed']);
    expect(ledger.at(-1)).toMatchObject({ kind: 'status', data: { status: 'completed', exit_code: 0 } });
    // The lines arrived while the sandbox ran, before the run ended: spread over time, not one batch at the end.
    expect(new Set(lines.map((e) => e.created_at.slice(0, 21))).size).toBeGreaterThan(5);

    // Task logs read the same ledger.
    const logs = (await s.api.call(`/v1/tasks/${task.id}/logs`, { token: s.adminToken })).body;
    expect(logs.lines).toEqual([...Array.from({ length: 50 }, (_, i) => `line ${i + 1}`), 'done']);
    expect(logs.stderr).toBe('done\n');
  });

  it('task logs with follow=true stream the lines live and end when the task does; a failing job ends its run failed', async () => {
    const task = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'echo a\nsleep 0.5\necho b\nexit 4', input_mode: 'commands' } })).body;
    const frames: SseFrame[] = [];
    const sse = await openSse(`${s.api.baseUrl}/v1/tasks/${task.id}/logs?follow=true&heartbeat_seconds=1`, { token: s.adminToken, onFrame: (f) => void frames.push(f) });
    expect(sse.status).toBe(200);
    await sse.ended;
    expect(frames.filter((f) => f.event === 'log').map((f) => JSON.parse(f.data).message)).toEqual(['a', 'b']);
    expect(frames.at(-1)).toMatchObject({ event: 'done' });
    expect(JSON.parse(frames.at(-1)!.data)).toEqual({ task_id: task.id, status: 'failed' });
    const run = (await s.api.call(`/v1/runs?task_id=${task.id}`, { token: s.adminToken })).body.runs[0];
    expect(run).toMatchObject({ status: 'failed', terminal: true, error: 'exit code 4' });
    const last = (await s.api.call(`/v1/runs/${run.id}/events?after=${run.last_seq - 1}`, { token: s.adminToken })).body.items[0];
    expect(last).toMatchObject({ kind: 'status', data: { status: 'failed', exit_code: 4, failure_code: 'exit_nonzero' } });
  });

  it("a sandbox's output is stored redacted: its log lines and the job's result", async () => {
    const token = 'ghp_8Zk2Lq9Xw4Vb7Nc1Rt5Ym3Hs6Jd0Fg2Pa4Eo';
    const aws = 'Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q';
    const script = `echo "GITHUB_TOKEN=${token}"; sleep 0.3; echo "aws_secret_access_key = ${aws}" >&2; echo done`;
    const task = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: script, input_mode: 'script' } })).body;
    const logs = await until('the task to end', async () => {
      const r = (await s.api.call(`/v1/tasks/${task.id}/logs`, { token: s.adminToken })).body;
      return r.lines.includes('done') && (await s.api.call(`/v1/tasks/${task.id}`, { token: s.adminToken })).body.closed ? r : null;
    });
    expect(logs.stdout).toBe('GITHUB_TOKEN=SECRET_REDACTED\ndone\n');
    expect(logs.stderr).toBe('aws_secret_access_key = SECRET_REDACTED\n');
    const result = (await s.api.call(`/v1/tasks/${task.id}/result`, { token: s.adminToken })).body;
    expect(result).toMatchObject({ stdout: 'GITHUB_TOKEN=SECRET_REDACTED\ndone\n', stderr: 'aws_secret_access_key = SECRET_REDACTED\n' });
    const stored = JSON.stringify([
      await s.cynode.db.query('SELECT e.message FROM run_events e JOIN runs r ON r.id = e.run_id WHERE r.task_id = $1', [task.id]),
      await s.cynode.db.query('SELECT result FROM jobs WHERE task_id = $1', [task.id]),
    ]);
    expect(stored).not.toContain(token);
    expect(stored).not.toContain(aws);
    expect(stored).toContain('SECRET_REDACTED');
  });

  it('canceling a running task ends its run canceled', async () => {
    const task = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'echo started; sleep 30', input_mode: 'commands' } })).body;
    const runId = (await s.api.call(`/v1/runs?task_id=${task.id}`, { token: s.adminToken })).body.runs[0].id;
    await until('the first line', async () => (await s.api.call(`/v1/runs/${runId}/logs`, { token: s.adminToken })).body.entries.length > 0);
    expect((await s.api.call(`/v1/tasks/${task.id}/cancel`, { token: s.adminToken, method: 'POST' })).status).toBe(200);
    const run = await until('the run to end', async () => {
      const r = (await s.api.call(`/v1/runs/${runId}`, { token: s.adminToken })).body;
      return r.terminal ? r : null;
    });
    expect(run.status).toBe('canceled');
  });

  it('output the database cannot store (a NUL) reaches the ledger and the result with U+FFFD in its place; the run completes', async () => {
    const task = (await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: "printf 'a\\000b\\n'; echo after", input_mode: 'script' } })).body;
    const run = await until('the run to end', async () => {
      const r = (await s.api.call(`/v1/runs?task_id=${task.id}`, { token: s.adminToken })).body.runs[0];
      return r?.terminal ? r : null;
    });
    expect(run.status).toBe('completed');
    const lines = (await s.api.call(`/v1/runs/${run.id}/logs`, { token: s.adminToken })).body.entries;
    expect(lines.map((e: any) => e.message)).toEqual(['a\uFFFDb', 'after']);
    expect((await s.api.call(`/v1/tasks/${task.id}/result`, { token: s.adminToken })).body.stdout).toBe('a\uFFFDb\nafter\n');
  });
});
