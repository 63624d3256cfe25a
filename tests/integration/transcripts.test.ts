import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/* Transcripts: redacted segments of sessions and runs, paged by a dense seq, seen only by who may see their owner. */
describe.each(DB_KINDS)('transcripts on %s', (kind) => {
  let s: TestServer;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  // A GitHub personal access token's shape; secretlint's preset and our rules both catch it.
  const githubToken = `ghp_${'a1B2c3D4e5'.repeat(3)}abcdef`;

  beforeAll(async () => {
    s = await startTestServer(kind);
    alice = await s.createUser('alice');
    bob = await s.createUser('bob');
  });
  afterAll(async () => {
    await s?.close();
  });

  const call = (token: string, path: string, body?: unknown, method?: string) => s.api.call(path, { token, body, method });
  const session = async (token: string) => (await call(token, '/v1/sessions', { title: 'notes' })).body;
  const runOfNewTask = async (token: string) => {
    const task = (await call(token, '/v1/tasks', { prompt: 'echo hi', input_mode: 'commands' })).body;
    return (await call(token, `/v1/runs?task_id=${task.id}`)).body.runs[0];
  };

  it('stores content and metadata strings redacted, and says so', async () => {
    const sess = await session(alice.token);
    const res = await call(alice.token, `/v1/sessions/${sess.id}/transcripts`, {
      kind: 'summary',
      content: `The deploy used ${githubToken} to push.`,
      metadata: { source: 'pm', nested: { note: `token=${githubToken}` }, count: 3 },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      session_id: sess.id,
      run_id: null,
      seq: 1,
      kind: 'summary',
      content: 'The deploy used SECRET_REDACTED to push.',
      metadata: { source: 'pm', count: 3 },
      redaction_applied: true,
      redaction_kinds: ['token'],
      expires_at: null,
      retention_policy: { days: null, source: 'system' },
      purged_at: null,
    });
    expect(res.body.metadata.nested.note).toContain('SECRET_REDACTED');
    expect(res.text).not.toContain(githubToken);
    const listed = (await call(alice.token, `/v1/sessions/${sess.id}/transcripts`)).body;
    expect(listed.segments).toEqual([expect.objectContaining({ id: res.body.id, content: 'The deploy used SECRET_REDACTED to push.' })]);
    const stored = await s.cynode.db.query<{ row: string }>('SELECT t::text AS row FROM transcript_segments t');
    expect(stored.length).toBeGreaterThan(0);
    for (const r of stored) expect(r.row).not.toContain(githubToken);

    const clean = await call(alice.token, `/v1/sessions/${sess.id}/transcripts`, { kind: 'redacted_view', content: 'nothing secret here' });
    expect(clean.body).toMatchObject({ seq: 2, content: 'nothing secret here', metadata: null, redaction_applied: false, redaction_kinds: [] });
  });

  it('numbers segments densely per session and per run, and pages through them in order', async () => {
    const sess = await session(alice.token);
    const run = await runOfNewTask(alice.token);
    for (let i = 1; i <= 5; i++) {
      expect((await call(alice.token, `/v1/sessions/${sess.id}/transcripts`, { kind: 'summary', content: `s${i}` })).status).toBe(201);
      if (i <= 3) expect((await call(alice.token, `/v1/runs/${run.id}/transcripts`, { kind: 'audit', content: `r${i}` })).status).toBe(201);
    }
    const seen: any[] = [];
    let path = `/v1/sessions/${sess.id}/transcripts?limit=2`;
    for (;;) {
      const page = await call(alice.token, path);
      expect(page.status).toBe(200);
      seen.push(...page.body.segments);
      if (!page.body.next_cursor) break;
      path = `/v1/sessions/${sess.id}/transcripts?limit=2&cursor=${page.body.next_cursor}`;
    }
    expect(seen.map((x) => [x.seq, x.content])).toEqual([[1, 's1'], [2, 's2'], [3, 's3'], [4, 's4'], [5, 's5']]);
    const ofRun = (await call(alice.token, `/v1/runs/${run.id}/transcripts`)).body.segments;
    expect(ofRun.map((x: any) => [x.seq, x.kind, x.content, x.run_id])).toEqual([1, 2, 3].map((n) => [n, 'audit', `r${n}`, run.id]));
  });

  it("a run's segment is announced in its ledger by id and kind, without the content", async () => {
    const run = await runOfNewTask(alice.token);
    const seg = (await call(alice.token, `/v1/runs/${run.id}/transcripts`, { kind: 'redacted_view', content: 'private words' })).body;
    const events = (await call(alice.token, `/v1/runs/${run.id}/events`)).body.items;
    const announced = events.filter((e: any) => e.kind === 'transcript');
    expect(announced).toEqual([expect.objectContaining({ kind: 'transcript', data: { segment_id: seg.id, kind: 'redacted_view', seq: 1 } })]);
    expect(JSON.stringify(events)).not.toContain('private words');
  });

  it('the expiry follows the policy in effect', async () => {
    const put = await call(s.adminToken, '/v1/retention/policies/system', { run_logs_days: null, transcripts_days: 7 }, 'PUT');
    expect(put.status, put.text).toBe(200);
    try {
      const sess = await session(alice.token);
      const seg = (await call(alice.token, `/v1/sessions/${sess.id}/transcripts`, { kind: 'summary', content: 'x' })).body;
      expect(seg.retention_policy).toEqual({ days: 7, source: 'system' });
      expect(Date.parse(seg.expires_at) - Date.parse(seg.created_at)).toBe(7 * 86_400_000);
    } finally {
      await call(s.adminToken, '/v1/retention/policies/system', { run_logs_days: null, transcripts_days: null }, 'PUT');
    }
  });

  it("another user's session or run is 404, to read and to write", async () => {
    const sess = await session(alice.token);
    const run = await runOfNewTask(alice.token);
    await call(alice.token, `/v1/sessions/${sess.id}/transcripts`, { kind: 'summary', content: 'mine' });
    for (const res of [
      await call(bob.token, `/v1/sessions/${sess.id}/transcripts`),
      await call(bob.token, `/v1/sessions/${sess.id}/transcripts`, { kind: 'summary', content: 'x' }),
      await call(bob.token, `/v1/runs/${run.id}/transcripts`),
      await call(bob.token, `/v1/runs/${run.id}/transcripts`, { kind: 'summary', content: 'x' }),
      await call(bob.token, '/v1/sessions/00000000-0000-4000-8000-000000000000/transcripts'),
    ]) {
      expect(res.status, res.text).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
  });

  it('bad input answers 400 problem documents, never 5xx', async () => {
    const sess = await session(alice.token);
    const path = `/v1/sessions/${sess.id}/transcripts`;
    for (const [p, body] of [
      [path, { kind: 'diary', content: 'x' }],
      [path, { kind: 'summary' }],
      [path, { kind: 'summary', content: 5 }],
      [path, { kind: 'summary', content: 'x', metadata: 'nope' }],
      [path, { kind: 'summary', content: 'x', extra: 1 }],
      [path, { kind: 'summary', content: 'x'.repeat(1024 * 1024 + 1) }],
      // Under the character limit, over 1 MiB in UTF-8.
      [path, { kind: 'summary', content: 'é'.repeat(600 * 1024) }],
      [`${path}?limit=0`, undefined],
      [`${path}?cursor=%%%`, undefined],
      ['/v1/sessions/not-a-uuid/transcripts', undefined],
      ['/v1/runs/not-a-uuid/transcripts', { kind: 'summary', content: 'x' }],
    ] as Array<[string, unknown]>) {
      const res = await call(alice.token, p, body);
      expect(res.status, `${p} ${res.text.slice(0, 200)}`).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
  });
});
