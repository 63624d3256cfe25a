import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/* Sessions: a user's own tree of sessions, the runs attached to them, and nobody else's. */
describe.each(DB_KINDS)('sessions on %s', (kind) => {
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

  const call = (token: string, path: string, body?: unknown) => s.api.call(path, { token, body });

  it('builds a session tree: children answer with their parent, lists filter by parent and page', async () => {
    const root = await call(alice.token, '/v1/sessions', { title: 'research' });
    expect(root.status).toBe(201);
    expect(root.body).toMatchObject({ id: expect.any(String), session_id: root.body.id, parent_session_id: null, user_id: alice.id, title: 'research' });
    const child = await call(alice.token, `/v1/sessions/${root.body.id}/sessions`, { title: 'sub' });
    expect(child.status).toBe(201);
    expect(child.body).toMatchObject({ parent_session_id: root.body.id, user_id: alice.id, title: 'sub' });
    const grandchild = await call(alice.token, '/v1/sessions', { parent_session_id: child.body.id });
    expect(grandchild.body).toMatchObject({ parent_session_id: child.body.id, title: null });
    const second = (await s.api.call(`/v1/sessions/${root.body.id}/sessions`, { token: alice.token, method: 'POST' })).body;
    expect(second.parent_session_id).toBe(root.body.id);

    expect((await call(alice.token, `/v1/sessions/${child.body.id}`)).body).toEqual(child.body);
    const kids = (await call(alice.token, `/v1/sessions?parent_session_id=${root.body.id}`)).body;
    expect(kids.sessions.map((x: any) => x.id)).toEqual([second.id, child.body.id]);
    const page1 = (await call(alice.token, '/v1/sessions?limit=3')).body;
    expect(page1.sessions).toHaveLength(3);
    const page2 = (await call(alice.token, `/v1/sessions?limit=3&cursor=${page1.next_cursor}`)).body;
    expect(page2.sessions.map((x: any) => x.id)).toEqual([root.body.id]);
    expect(page2.next_cursor).toBeNull();
  });

  it("a task created in a session puts its runs there; the session's runs list them", async () => {
    const session = (await call(alice.token, '/v1/sessions', { title: 'work' })).body;
    const t = await call(alice.token, '/v1/tasks', { prompt: 'echo in session', input_mode: 'commands', session_id: session.id });
    expect(t.status).toBe(201);
    expect(t.body.session_id).toBe(session.id);
    const other = (await call(alice.token, '/v1/tasks', { prompt: 'echo elsewhere', input_mode: 'commands' })).body;
    expect(other.session_id).toBeNull();
    const extra = (await call(alice.token, '/v1/runs', { task_id: other.id, session_id: session.id })).body;

    const runs = (await call(alice.token, `/v1/sessions/${session.id}/runs`)).body;
    expect(runs.runs.map((r: any) => r.id)).toContain(extra.id);
    expect(runs.runs).toHaveLength(2);
    expect(runs.runs.find((r: any) => r.id !== extra.id)).toMatchObject({ task_id: t.body.id, session_id: session.id, job_id: expect.any(String) });
    const filtered = (await call(alice.token, `/v1/runs?session_id=${session.id}&task_id=${t.body.id}`)).body;
    expect(filtered.runs).toHaveLength(1);
  });

  it("another user's session is 404 everywhere: read, children, runs, as a parent, for a task or a run", async () => {
    const mine = (await call(alice.token, '/v1/sessions', { title: 'private' })).body;
    const bobTask = (await call(bob.token, '/v1/tasks', { prompt: 'echo bob', input_mode: 'commands' })).body;
    const attempts = [
      await call(bob.token, `/v1/sessions/${mine.id}`),
      await call(bob.token, `/v1/sessions/${mine.id}/runs`),
      await call(bob.token, `/v1/sessions/${mine.id}/sessions`, {}),
      await call(bob.token, '/v1/sessions', { parent_session_id: mine.id }),
      await call(bob.token, `/v1/sessions?parent_session_id=${mine.id}`),
      await call(bob.token, '/v1/tasks', { prompt: 'echo x', input_mode: 'commands', session_id: mine.id }),
      await call(bob.token, '/v1/runs', { task_id: bobTask.id, session_id: mine.id }),
    ];
    for (const res of attempts) {
      expect(res.status, res.text).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await call(bob.token, '/v1/sessions')).body.sessions).toEqual([]);
  });

  it('bad input answers 400', async () => {
    for (const [path, body] of [
      ['/v1/sessions', { title: 5 }],
      ['/v1/sessions', { parent_session_id: 'nope' }],
      ['/v1/sessions', { owner: 'me' }],
      ['/v1/sessions', { title: 'x'.repeat(501) }],
      ['/v1/sessions?limit=0', undefined],
      ['/v1/sessions?cursor=%%%', undefined],
      ['/v1/sessions/not-a-uuid', undefined],
      ['/v1/tasks', { prompt: 'echo', session_id: 'nope' }],
    ] as Array<[string, unknown]>) {
      const res = await call(alice.token, path, body);
      expect(res.status, `${path} ${JSON.stringify(body)} ${res.text}`).toBe(400);
    }
  });
});
