import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { openSse, type SseFrame } from '../support/sse';
import { until } from '../support/until';

/*
 * The runs API over HTTP: create, list with filters, children, status changes as events, logs
 * by time range, replay of the ledger, the live stream, who may see what, and bad input.
 */
describe.each(DB_KINDS)('runs API on %s', (kind) => {
  let s: TestServer;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };

  beforeAll(async () => {
    s = await startTestServer(kind);
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
  });
  afterAll(async () => {
    await s?.close();
  });

  const call = (token: string, path: string, body?: unknown, method?: string) => s.api.call(path, { token, body, method });
  const task = async (token: string, prompt = 'echo hi') => (await call(token, '/v1/tasks', { prompt, input_mode: 'commands' })).body;
  const run = async (token: string, body: Record<string, unknown>) => {
    const res = await call(token, '/v1/runs', body);
    expect(res.status, res.text).toBe(201);
    return res.body;
  };
  const replay = async (token: string, runId: string) => {
    const items: any[] = [];
    let after = 0;
    for (;;) {
      const page = (await call(token, `/v1/runs/${runId}/events?after=${after}&limit=7`)).body;
      if (page.items.length === 0) return { items, page };
      items.push(...page.items);
      after = page.next_after;
    }
  };

  it('every task has a run from the start, pending, with a status event first', async () => {
    const t = await task(alice.token);
    const list = (await call(alice.token, `/v1/runs?task_id=${t.id}`)).body;
    expect(list.runs).toHaveLength(1);
    const r = list.runs[0];
    expect(r).toMatchObject({ task_id: t.id, job_id: expect.any(String), status: 'pending', terminal: false, last_seq: 1, parent_run_id: null, session_id: null });
    const events = (await call(alice.token, `/v1/runs/${r.id}/events`)).body;
    expect(events).toMatchObject({ run_status: 'pending', terminal: false, next_after: 1 });
    expect(events.items).toEqual([{ seq: 1, kind: 'status', stream: null, message: null, data: { status: 'pending' }, created_at: expect.any(String) }]);
  });

  it('creates runs and sub-runs, lists them by task, parent, status and time, page by page', async () => {
    const t = await task(alice.token);
    const before = new Date().toISOString();
    const parent = await run(alice.token, { task_id: t.id, status: 'running', metadata: { purpose: 'plan' } });
    expect(parent).toMatchObject({ task_id: t.id, status: 'running', metadata: { purpose: 'plan' }, created_by: alice.id, started_at: expect.any(String), ended_at: null });
    const kids = [];
    for (let i = 0; i < 3; i++) kids.push(await run(alice.token, { task_id: t.id, parent_run_id: parent.id }));
    const children = (await call(alice.token, `/v1/runs/${parent.id}/children`)).body;
    expect(children.runs.map((r: any) => r.id)).toEqual(kids.map((k) => k.id).reverse());

    const byParent = (await call(alice.token, `/v1/runs?parent_run_id=${parent.id}&limit=2`)).body;
    expect(byParent.runs).toHaveLength(2);
    const rest = (await call(alice.token, `/v1/runs?parent_run_id=${parent.id}&limit=2&cursor=${byParent.next_cursor}`)).body;
    expect(rest.runs.map((r: any) => r.id)).toEqual([kids[0].id]);
    expect(rest.next_cursor).toBeNull();

    const running = (await call(alice.token, `/v1/runs?task_id=${t.id}&status=running`)).body;
    expect(running.runs.map((r: any) => r.id)).toEqual([parent.id]);
    // People see runs by their task's name, in lists and when reading one.
    expect(running.runs[0].task_name).toBe(t.task_name);
    expect((await call(alice.token, `/v1/runs/${parent.id}`)).body.task_name).toBe(t.task_name);
    const since = (await call(alice.token, `/v1/runs?task_id=${t.id}&since=${encodeURIComponent(before)}`)).body;
    expect(since.runs).toHaveLength(4);
    const untilBefore = (await call(alice.token, `/v1/runs?task_id=${t.id}&until=${encodeURIComponent(before)}`)).body;
    expect(untilBefore.runs).toHaveLength(1); // the job's run, created with the task
    const job = (await call(alice.token, `/v1/runs?job_id=${untilBefore.runs[0].job_id}`)).body;
    expect(job.runs.map((r: any) => r.id)).toEqual([untilBefore.runs[0].id]);
  });

  it('a status change is an event; an ended run keeps its status (409); logs read by stream and time range', async () => {
    const t = await task(alice.token);
    const r = await run(alice.token, { task_id: t.id });
    expect((await call(alice.token, `/v1/runs/${r.id}`, { status: 'running' }, 'PATCH')).body).toMatchObject({ status: 'running', last_seq: 2 });
    const appended = await call(alice.token, `/v1/runs/${r.id}/logs`, { entries: [{ stream: 'stdout', message: 'one' }, { stream: 'stderr', message: 'two' }, { stream: 'stdout', message: 'three', data: { n: 3 } }] });
    expect(appended.status).toBe(201);
    expect(appended.body).toEqual({ appended: 3 });
    const done = await call(alice.token, `/v1/runs/${r.id}`, { status: 'failed', error: 'it broke' }, 'PATCH');
    expect(done.body).toMatchObject({ status: 'failed', terminal: true, error: 'it broke', last_seq: 6, ended_at: expect.any(String) });
    // Nothing to change: the run as it is.
    expect((await call(alice.token, `/v1/runs/${r.id}`, {}, 'PATCH')).body).toMatchObject({ status: 'failed', last_seq: 6 });
    const again = await call(alice.token, `/v1/runs/${r.id}`, { status: 'running' }, 'PATCH');
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toContain('application/problem+json');

    const { items } = await replay(alice.token, r.id);
    expect(items.map((e) => [e.seq, e.kind, e.stream, e.message ?? e.data?.status])).toEqual([
      [1, 'status', null, 'pending'],
      [2, 'status', null, 'running'],
      [3, 'log', 'stdout', 'one'],
      [4, 'log', 'stderr', 'two'],
      [5, 'log', 'stdout', 'three'],
      [6, 'status', null, 'failed'],
    ]);
    const stdout = (await call(alice.token, `/v1/runs/${r.id}/logs?stream=stdout&limit=1`)).body;
    expect(stdout.entries.map((e: any) => e.message)).toEqual(['one']);
    const next = (await call(alice.token, `/v1/runs/${r.id}/logs?stream=stdout&limit=1&cursor=${stdout.next_cursor}`)).body;
    expect(next.entries).toEqual([{ seq: 5, ts: expect.any(String), stream: 'stdout', message: 'three', data: { n: 3 } }]);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await call(alice.token, `/v1/runs/${r.id}/logs?since=${encodeURIComponent(future)}`)).body.entries).toEqual([]);
    const all = (await call(alice.token, `/v1/runs/${r.id}/logs?until=${encodeURIComponent(future)}`)).body;
    expect(all.entries.map((e: any) => e.seq)).toEqual([3, 4, 5]);
  });

  it('streams replay then live events, resumes after Last-Event-ID, and ends with done once the run has ended', async () => {
    const t = await task(alice.token);
    const r = await run(alice.token, { task_id: t.id, status: 'running' });
    await call(alice.token, `/v1/runs/${r.id}/logs`, { entries: [{ stream: 'stdout', message: 'before' }] });
    const frames: SseFrame[] = [];
    const sse = await openSse(`${s.api.baseUrl}/v1/runs/${r.id}/events/stream?heartbeat_seconds=1`, { token: alice.token, onFrame: (f) => void frames.push(f) });
    expect(sse.status).toBe(200);
    expect(sse.headers.get('content-type')).toContain('text/event-stream');
    while (frames.length < 2) await new Promise((res) => setTimeout(res, 20));
    // Idle: heartbeat comments keep the connection alive.
    await until('a heartbeat', async () => sse.comments.includes('heartbeat'), 10_000, 50);
    await call(alice.token, `/v1/runs/${r.id}/logs`, { entries: [{ stream: 'stdout', message: 'live' }] });
    await call(alice.token, `/v1/runs/${r.id}`, { status: 'completed' }, 'PATCH');
    await sse.ended;
    expect(sse.retry).toBe(3000);
    const events = frames.filter((f) => f.event === 'run.event').map((f) => JSON.parse(f.data));
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(frames.filter((f) => f.event === 'run.event').map((f) => f.id)).toEqual(['1', '2', '3', '4']);
    expect(events[0]).toMatchObject({ run_id: r.id, seq: 1, event: { kind: 'status', data: { status: 'running' } } });
    expect(events[2]).toMatchObject({ run_id: r.id, seq: 3, event: { kind: 'log', stream: 'stdout', message: 'live' } });
    expect(frames.at(-1)).toMatchObject({ event: 'done' });
    expect(JSON.parse(frames.at(-1)!.data)).toEqual({ run_id: r.id, last_seq: 4, status: 'completed' });

    // An ended run: a client resuming after seq 2 gets 3 and 4, then done; max(Last-Event-ID, after) wins.
    const resumed: SseFrame[] = [];
    const again = await openSse(`${s.api.baseUrl}/v1/runs/${r.id}/events/stream?after=1`, { token: alice.token, lastEventId: '2', onFrame: (f) => void resumed.push(f) });
    await again.ended;
    expect(resumed.map((f) => [f.event, f.id])).toEqual([
      ['run.event', '3'],
      ['run.event', '4'],
      ['done', undefined],
    ]);
  });

  it("another user's run is 404 everywhere, before any stream opens; a reader may not write", async () => {
    const t = await task(alice.token);
    const r = await run(alice.token, { task_id: t.id });
    for (const path of [`/v1/runs/${r.id}`, `/v1/runs/${r.id}/children`, `/v1/runs/${r.id}/events`, `/v1/runs/${r.id}/logs`, `/v1/runs/${r.id}/events/stream`]) {
      const res = await call(bob.token, path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toContain('application/problem+json');
    }
    expect((await call(bob.token, `/v1/runs/${r.id}/logs`, { entries: [{ stream: 'stdout', message: 'x' }] })).status).toBe(404);
    expect((await call(bob.token, `/v1/runs/${r.id}`, { status: 'failed' }, 'PATCH')).status).toBe(404);
    expect((await call(bob.token, '/v1/runs', { task_id: t.id })).status).toBe(404);
    expect((await call(bob.token, '/v1/runs', { task_id: (await task(bob.token)).id, parent_run_id: r.id })).status).toBe(404);
    expect((await call(bob.token, `/v1/runs?task_id=${t.id}`)).body.runs).toEqual([]);
    // The admin reads every project's tasks, so sees the run.
    expect((await call(s.adminToken, `/v1/runs/${r.id}`)).status).toBe(200);
  });

  it('bad input answers 400 problem documents, never 5xx', async () => {
    const t = await task(alice.token);
    const r = await run(alice.token, { task_id: t.id });
    const cases: Array<[string, unknown, string?]> = [
      ['/v1/runs', { task_id: 'not-a-uuid' }],
      ['/v1/runs', { task_id: t.id, status: 'sleeping' }],
      ['/v1/runs', { task_id: t.id, surprise: 1 }],
      ['/v1/runs', { task_id: t.id, metadata: 'text' }],
      ['/v1/runs', { task_id: t.id, job_id: '00000000-0000-4000-8000-000000000000' }],
      [`/v1/runs/${r.id}/logs`, { entries: [] }],
      [`/v1/runs/${r.id}/logs`, { entries: [{ stream: 'stdlog', message: 'x' }] }],
      [`/v1/runs/${r.id}/logs`, { entries: [{ message: 'x' }] }],
      ['/v1/runs?status=sleeping', undefined],
      ['/v1/runs?limit=0', undefined],
      ['/v1/runs?cursor=garbage', undefined],
      ['/v1/runs?since=yesterday', undefined],
      [`/v1/runs?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z`, undefined],
      ['/v1/runs/not-a-uuid', undefined],
      [`/v1/runs/${r.id}/events?after=-1`, undefined],
      [`/v1/runs/${r.id}/events?limit=5000`, undefined],
      [`/v1/runs/${r.id}/logs?cursor=zzz`, undefined],
      [`/v1/runs/${r.id}/events/stream?after=x`, undefined],
    ];
    for (const [path, body, method] of cases) {
      const res = await call(alice.token, path, body, method);
      expect(res.status, `${method ?? (body ? 'POST' : 'GET')} ${path} ${JSON.stringify(body)}: ${res.text}`).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    const badId = await s.api.call(`/v1/runs/${r.id}/events/stream`, { token: alice.token, headers: { 'last-event-id': 'abc' } });
    expect(badId.status).toBe(400);
    expect(badId.body.detail).toMatch(/Last-Event-ID/);
    expect((await call(alice.token, '/v1/runs/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  /** JSON text nested 10,000 levels deep (JSON.stringify itself could not build it). */
  const DEEP = '['.repeat(10_000) + ']'.repeat(10_000);
  /** A value the database refuses, as JSON text: NUL, an unpaired surrogate, nesting too deep. */
  const UNSTORABLE = [JSON.stringify({ note: 'a\u0000b' }), JSON.stringify({ note: 'x\ud800y' }), DEEP, JSON.stringify({ ['k\u0000']: 1 })];
  const raw = (token: string, path: string, rawBody: string, method = 'POST') => s.api.call(path, { token, rawBody, method });

  it("one user's values the database refuses fail only their own log appends; another user's concurrent appends are all stored", async () => {
    const mine = await run(alice.token, { task_id: (await task(alice.token)).id });
    const theirs = await run(bob.token, { task_id: (await task(bob.token)).id });
    const valid = Array.from({ length: 40 }, (_, i) => call(alice.token, `/v1/runs/${mine.id}/logs`, { entries: [{ stream: 'stdout', message: `line ${i}`, data: { i } }] }));
    const refused = Array.from({ length: 40 }, (_, i) =>
      i % 5 === 4
        ? call(bob.token, `/v1/runs/${theirs.id}/logs`, { entries: [{ stream: 'stderr', message: 'nul \u0000 in the message' }] })
        : raw(bob.token, `/v1/runs/${theirs.id}/logs`, `{"entries":[{"stream":"stderr","message":"x","data":${UNSTORABLE[i % 4]}}]}`),
    );
    const [stored, bad] = await Promise.all([Promise.all(valid), Promise.all(refused)]);
    expect(stored.map((r) => r.status)).toEqual(Array(40).fill(201));
    expect(bad.map((r) => r.status)).toEqual(Array(40).fill(400));
    for (const r of bad) expect(r.body.detail).toMatch(/^body\.entries\[0\]\.(data|message)/);
    const lines = (await call(alice.token, `/v1/runs/${mine.id}/logs?limit=100`)).body.entries;
    expect(lines.map((e: any) => e.message).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `line ${i}`).sort());
    expect((await call(bob.token, `/v1/runs/${theirs.id}/logs`)).body.entries).toEqual([]);
  });

  it('deep JSON, NUL and unpaired surrogates in free-form fields answer 400 on every route that stores them, never 5xx', async () => {
    const t = await task(alice.token);
    const r = await run(alice.token, { task_id: t.id });
    const sess = (await call(alice.token, '/v1/sessions', { title: 'notes' })).body;
    const routes: Array<[string, string, (v: string) => string]> = [
      ['POST', '/v1/runs', (v) => `{"task_id":"${t.id}","metadata":{"m":${v}}}`],
      ['PATCH', `/v1/runs/${r.id}`, (v) => `{"metadata":{"m":${v}}}`],
      ['POST', `/v1/runs/${r.id}/logs`, (v) => `{"entries":[{"stream":"stdout","data":${v}}]}`],
      ['POST', `/v1/runs/${r.id}/commands`, (v) => `{"command_id":"c-${Math.random()}","type":"emit_event","payload":{"name":"n","data":${v}}}`],
      ['POST', `/v1/runs/${r.id}/transcripts`, (v) => `{"kind":"summary","content":"c","metadata":{"m":${v}}}`],
      ['POST', `/v1/sessions/${sess.id}/transcripts`, (v) => `{"kind":"summary","content":"c","metadata":{"m":${v}}}`],
    ];
    for (const [method, path, body] of routes) {
      for (const value of UNSTORABLE) {
        const res = await raw(alice.token, path, body(value), method);
        expect(res.status, `${method} ${path} ${value.slice(0, 40)}: ${res.text.slice(0, 200)}`).toBe(400);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
        expect(res.body.detail).toMatch(/must not (contain|have keys)|nests arrays and objects deeper than 64 levels/);
      }
    }
    // Nothing of it was stored.
    expect((await call(alice.token, `/v1/runs/${r.id}`)).body).toMatchObject({ metadata: null, last_seq: 1 });
  });

  it('caps run metadata at 64 KiB (413, naming the limit) and leaves it out of run lists; reading one run shows it', async () => {
    const t = await task(alice.token);
    const tooBig = { blob: 'x'.repeat(64 * 1024) };
    const refused = await call(alice.token, '/v1/runs', { task_id: t.id, metadata: tooBig });
    expect(refused.status).toBe(413);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.body.detail).toMatch(/65536 bytes \(64 KiB\)/);

    const metadata = { purpose: 'x'.repeat(60 * 1024) };
    const r = await run(alice.token, { task_id: t.id, metadata });
    expect(r.metadata).toEqual(metadata);
    expect((await call(alice.token, `/v1/runs/${r.id}`, { metadata: tooBig }, 'PATCH')).status).toBe(413);
    expect((await call(alice.token, `/v1/runs/${r.id}`)).body.metadata).toEqual(metadata);

    const listed = (await call(alice.token, `/v1/runs?task_id=${t.id}`)).body.runs;
    expect(listed.map((x: any) => x.id)).toContain(r.id);
    for (const x of listed) expect(x).not.toHaveProperty('metadata');
    const child = await run(alice.token, { task_id: t.id, parent_run_id: r.id, metadata });
    expect((await call(alice.token, `/v1/runs/${r.id}/children`)).body.runs.map((x: any) => [x.id, 'metadata' in x])).toEqual([[child.id, false]]);
  });
});
