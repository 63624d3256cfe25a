import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { until } from '../support/until';

/*
 * Retention: system and project policies for run logs and transcripts, and the purge that
 * empties what expired while replay, audit references and seqs stay valid.
 */
describe.each(DB_KINDS)('retention on %s', (kind) => {
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
  const project = async (slug: string) => {
    const res = await call(alice.token, '/v1/projects', { slug, display_name: slug });
    expect(res.status, res.text).toBe(201);
    return res.body;
  };
  /** A run in the project with three log lines. */
  const runWithLogs = async (projectId: string) => {
    const task = (await call(alice.token, '/v1/tasks', { prompt: 'echo hi', input_mode: 'commands', project_id: projectId })).body;
    const run = (await call(alice.token, `/v1/runs?task_id=${task.id}`)).body.runs[0];
    const logs = await call(alice.token, `/v1/runs/${run.id}/logs`, { entries: ['one', 'two', 'three'].map((message) => ({ stream: 'stdout', message })) });
    expect(logs.status, logs.text).toBe(201);
    return run;
  };
  /** What a purge sees as old: the rows' own timestamps moved back, as time would. */
  const age = async (table: 'run_events' | 'transcript_segments', column: 'run_id' | 'session_id', id: string, days: number) => {
    await s.cynode.db.query(`UPDATE ${table} SET created_at = created_at - make_interval(days => $2) WHERE ${column} = $1`, [id, days]);
  };
  const purge = async () => {
    const res = await call(s.adminToken, '/v1/retention/purge', {});
    expect(res.status, res.text).toBe(200);
    return res.body;
  };

  it('only admins change the system policy; operators and admins read it', async () => {
    const denied = await call(alice.token, '/v1/retention/policies/system', { run_logs_days: 1, transcripts_days: 1 }, 'PUT');
    expect(denied.status, denied.text).toBe(403);
    expect(denied.headers.get('content-type')).toContain('application/problem+json');
    expect((await call(alice.token, '/v1/retention/policies/system')).status).toBe(403);
    expect((await call(alice.token, '/v1/retention/purge', {})).status).toBe(403);
    const before = (await call(s.adminToken, '/v1/retention/policies/system')).body;
    expect(before).toMatchObject({ scope: 'system', run_logs_days: null, transcripts_days: null });

    const put = await call(s.adminToken, '/v1/retention/policies/system', { run_logs_days: 90, transcripts_days: null }, 'PUT');
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ run_logs_days: 90, transcripts_days: null, updated_by: expect.any(String) });
    expect((await call(s.adminToken, '/v1/retention/policies/system')).body).toMatchObject({ run_logs_days: 90, transcripts_days: null });
    const audit = (await call(s.adminToken, '/v1/audit?action=retention_policy_updated')).body.events;
    expect(audit[0]).toMatchObject({ scope_type: 'system', details: { run_logs_days: 90, transcripts_days: null } });
    // Back to keeping everything, for the tests below.
    await call(s.adminToken, '/v1/retention/policies/system', { run_logs_days: null, transcripts_days: null }, 'PUT');
  });

  it("a project's owner sets its policy; fields it leaves out inherit the system's; others get 404", async () => {
    const p = await project('policy-read');
    const initial = (await call(alice.token, `/v1/projects/${p.id}/retention`)).body;
    expect(initial).toMatchObject({ project_id: p.id, run_logs_inherited: true, transcripts_inherited: true, effective: { run_logs_days: null, run_logs_source: 'system' } });
    const put = await call(alice.token, `/v1/projects/${p.slug}/retention`, { run_logs_days: 3 }, 'PUT');
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({
      run_logs_days: 3,
      run_logs_inherited: false,
      transcripts_days: null,
      transcripts_inherited: true,
      effective: { run_logs_days: 3, run_logs_source: 'project', transcripts_days: null, transcripts_source: 'system' },
    });
    // null keeps forever even where the system would not.
    await call(s.adminToken, '/v1/retention/policies/system', { run_logs_days: 5, transcripts_days: 5 }, 'PUT');
    const forever = (await call(alice.token, `/v1/projects/${p.id}/retention`, { run_logs_days: null }, 'PUT')).body;
    expect(forever.effective).toEqual({ run_logs_days: null, run_logs_source: 'project', transcripts_days: 5, transcripts_source: 'system' });
    await call(s.adminToken, '/v1/retention/policies/system', { run_logs_days: null, transcripts_days: null }, 'PUT');
    await call(alice.token, `/v1/projects/${p.id}/retention`, {}, 'PUT');

    expect((await call(bob.token, `/v1/projects/${p.id}/retention`)).status).toBe(404);
    expect((await call(bob.token, `/v1/projects/${p.id}/retention`, { run_logs_days: 1 }, 'PUT')).status).toBe(404);
    expect((await call(s.adminToken, `/v1/projects/${p.id}/retention`, { transcripts_days: 2 }, 'PUT')).status).toBe(200);
  });

  it("a project policy purges that project's expired log lines only; replay, logs and the audit trail stay valid", async () => {
    const short = await project('short-logs');
    const other = await project('kept-logs');
    expect((await call(alice.token, `/v1/projects/${short.id}/retention`, { run_logs_days: 1 }, 'PUT')).status).toBe(200);
    const purgedRun = await runWithLogs(short.id);
    const keptRun = await runWithLogs(other.id);
    const fresh = await runWithLogs(short.id);
    await age('run_events', 'run_id', purgedRun.id, 10);
    await age('run_events', 'run_id', keptRun.id, 10);
    const before = (await call(alice.token, `/v1/runs/${purgedRun.id}/events`)).body.items;

    const result = await purge();
    expect(result).toMatchObject({ trigger: 'manual', run_log_lines: 3, transcript_segments: 0 });
    const logSeqs = before.filter((e: any) => e.kind === 'log').map((e: any) => e.seq);
    expect(result.run_logs).toEqual([{ run_id: purgedRun.id, project_id: short.id, lines: 3, first_seq: logSeqs[0], last_seq: logSeqs[2], days: 1, source: 'project' }]);

    // The ledger keeps every seq; purged lines say so and keep nothing else.
    const replay = await call(alice.token, `/v1/runs/${purgedRun.id}/events?after=0`);
    expect(replay.status).toBe(200);
    expect(replay.body.items.map((e: any) => e.seq)).toEqual(before.map((e: any) => e.seq));
    for (const e of replay.body.items) {
      if (e.kind === 'log') expect(e).toMatchObject({ message: null, data: { purged: true }, stream: 'stdout' });
      else expect(e).toEqual(before.find((b: any) => b.seq === e.seq));
    }
    const after1 = (await call(alice.token, `/v1/runs/${purgedRun.id}/events?after=${logSeqs[0]}`)).body.items;
    expect(after1.map((e: any) => e.seq)).toEqual(before.filter((e: any) => e.seq > logSeqs[0]).map((e: any) => e.seq));
    expect((await call(alice.token, `/v1/runs/${purgedRun.id}/logs`)).status).toBe(200);
    for (const run of [keptRun, fresh]) {
      const lines = (await call(alice.token, `/v1/runs/${run.id}/logs`)).body.entries;
      expect(lines.map((l: any) => l.message)).toEqual(['one', 'two', 'three']);
    }

    // The purge is itself on the record, naming the run it emptied, which still resolves.
    const audit = (await call(s.adminToken, `/v1/audit?action=retention_purged&resource_id=${result.purge_id}`)).body.events;
    expect(audit).toHaveLength(1);
    const event = await call(s.adminToken, `/v1/audit/${audit[0].event_id}`);
    expect(event.status).toBe(200);
    expect(event.body).toMatchObject({ category: 'admin', resource_type: 'retention_purge', details: { trigger: 'manual', run_log_lines: 3, run_logs: [{ run_id: purgedRun.id, lines: 3, days: 1 }] } });
    expect((await call(alice.token, `/v1/runs/${event.body.details.run_logs[0].run_id}`)).status).toBe(200);
    const recorded = await s.cynode.db.query<{ run_log_lines: string }>('SELECT run_log_lines FROM retention_purges WHERE id = $1', [result.purge_id]);
    expect(Number(recorded[0]!.run_log_lines)).toBe(3);

    // Nothing is purged twice.
    expect(await purge()).toMatchObject({ run_log_lines: 0, run_logs: [] });
  });

  it('the system policy covers projects without their own; expired transcript segments become tombstones and seqs go on', async () => {
    const p = await project('system-covered');
    const run = await runWithLogs(p.id);
    const sess = (await call(alice.token, '/v1/sessions', { title: 'old notes' })).body;
    const first = (await call(alice.token, `/v1/sessions/${sess.id}/transcripts`, { kind: 'summary', content: 'old' })).body;
    await age('run_events', 'run_id', run.id, 40);
    await age('transcript_segments', 'session_id', sess.id, 40);
    expect((await call(s.adminToken, '/v1/retention/policies/system', { run_logs_days: 30, transcripts_days: 30 }, 'PUT')).status).toBe(200);
    try {
      const result = await purge();
      expect(result.run_logs).toEqual([expect.objectContaining({ run_id: run.id, lines: 3, days: 30, source: 'system' })]);
      expect(result.transcripts).toEqual([{ session_id: sess.id, run_id: null, project_id: null, segments: 1, days: 30, source: 'system' }]);
      expect(result.system_policy).toEqual({ run_logs_days: 30, transcripts_days: 30 });

      const second = (await call(alice.token, `/v1/sessions/${sess.id}/transcripts`, { kind: 'summary', content: 'new' })).body;
      expect(second.seq).toBe(2);
      const segments = (await call(alice.token, `/v1/sessions/${sess.id}/transcripts`)).body.segments;
      expect(segments.map((x: any) => [x.id, x.seq, x.content])).toEqual([[first.id, 1, null], [second.id, 2, 'new']]);
      expect(segments[0].purged_at).toEqual(expect.any(String));
    } finally {
      await call(s.adminToken, '/v1/retention/policies/system', { run_logs_days: null, transcripts_days: null }, 'PUT');
    }
  });

  it('deletes access-audit decisions older than the access-audit retention, keeps newer ones', async () => {
    const decide = (resourceId: string, daysAgo: number) =>
      s.cynode.db.query(
        `INSERT INTO access_audit (at, action, resource_type, resource_id, decision) VALUES (now() - make_interval(days => $2), 'model.use', 'model', $1, 'allow')`,
        [resourceId, daysAgo],
      );
    await decide('retention-old-model', 91);
    await decide('retention-new-model', 89);
    const result = await purge();
    expect(result.access_audit).toMatchObject({ days: 90 });
    expect(result.access_audit.rows).toBeGreaterThanOrEqual(1);
    const left = await s.cynode.db.query<{ resource_id: string }>(`SELECT resource_id FROM access_audit WHERE resource_id LIKE 'retention-%'`);
    expect(left.map((r) => r.resource_id)).toEqual(['retention-new-model']);
  });

  it('deletes MCP tool calls older than the access-audit retention, keeps newer ones', async () => {
    const called = (tool: string, daysAgo: number) =>
      s.cynode.db.query(
        `INSERT INTO tool_call_audit (created_at, subject_type, tool_name, decision, status, duration_ms) VALUES (now() - make_interval(days => $2), 'user', $1, 'allow', 'success', 1)`,
        [tool, daysAgo],
      );
    await called('retention.old', 91);
    await called('retention.new', 89);
    const result = await purge();
    expect(result.tool_call_audit).toMatchObject({ days: 90 });
    expect(result.tool_call_audit.rows).toBeGreaterThanOrEqual(1);
    const left = await s.cynode.db.query<{ tool_name: string }>(`SELECT tool_name FROM tool_call_audit WHERE tool_name LIKE 'retention.%'`);
    expect(left.map((r) => r.tool_name)).toEqual(['retention.new']);
  });

  it('deletes agent tokens expired longer ago than the access-audit retention, keeps the others', async () => {
    const admin = (await s.cynode.db.query<{ id: string }>(`SELECT id FROM users WHERE handle = 'admin'`))[0]!.id;
    const expired = (role: string, daysAgo: number) =>
      s.cynode.db.query(
        `INSERT INTO agent_tokens (user_id, role, created_at, expires_at) VALUES ($1, $2, now() - make_interval(days => $3), now() - make_interval(days => $3) + interval '15 minutes')`,
        [admin, role, daysAgo],
      );
    await expired('project_manager', 91);
    await expired('project_analyst', 89);
    const result = await purge();
    expect(result.agent_tokens).toMatchObject({ days: 90 });
    expect(result.agent_tokens.rows).toBeGreaterThanOrEqual(1);
    const left = await s.cynode.db.query<{ role: string }>(`SELECT role FROM agent_tokens WHERE expires_at < now() - interval '80 days'`);
    expect(left.map((r) => r.role)).toEqual(['project_analyst']);
  });

  it('bad input answers 400 problem documents, never 5xx', async () => {
    const p = await project('bad-input');
    for (const [path, body] of [
      ['/v1/retention/policies/system', { run_logs_days: 0, transcripts_days: null }],
      ['/v1/retention/policies/system', { run_logs_days: 'ten', transcripts_days: null }],
      ['/v1/retention/policies/system', { run_logs_days: 1.5, transcripts_days: null }],
      ['/v1/retention/policies/system', { run_logs_days: 1 }],
      ['/v1/retention/policies/system', { run_logs_days: 1, transcripts_days: 1, audit_days: 1 }],
      [`/v1/projects/${p.id}/retention`, { run_logs_days: -1 }],
      [`/v1/projects/${p.id}/retention`, { keep: true }],
    ] as Array<[string, unknown]>) {
      const res = await call(s.adminToken, path, body, 'PUT');
      expect(res.status, `${path} ${JSON.stringify(body)} ${res.text}`).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await call(s.adminToken, '/v1/retention/purge', { now: true })).status).toBe(400);
  });
});

/* The purge job of the gateway process, on a short interval, applies the policy by itself. */
describe.each(DB_KINDS)('scheduled retention purge on %s', (kind) => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startTestServer(kind, { retentionIntervalSeconds: 1 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('purges expired log lines and records the purge without being asked', async () => {
    const call = (path: string, body?: unknown, method?: string) => s.api.call(path, { token: s.adminToken, body, method });
    const task = (await call('/v1/tasks', { prompt: 'echo hi', input_mode: 'commands' })).body;
    const run = (await call(`/v1/runs?task_id=${task.id}`)).body.runs[0];
    await call(`/v1/runs/${run.id}/logs`, { entries: [{ stream: 'stderr', message: 'old line' }] });
    await s.cynode.db.query("UPDATE run_events SET created_at = created_at - interval '3 days' WHERE run_id = $1", [run.id]);
    expect((await call('/v1/retention/policies/system', { run_logs_days: 2, transcripts_days: null }, 'PUT')).status).toBe(200);

    const audit = await until('a scheduled purge', async () => (await call('/v1/audit?action=retention_purged')).body.events[0]);
    expect(audit).toMatchObject({ actor_id: null, details: { trigger: 'schedule', run_log_lines: 1, run_logs: [{ run_id: run.id, days: 2, source: 'system' }] } });
    const lines = (await call(`/v1/runs/${run.id}/logs`)).body.entries;
    expect(lines).toEqual([expect.objectContaining({ message: null, data: { purged: true } })]);
  });
});
