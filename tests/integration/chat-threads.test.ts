import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAnswers, appendMessages, type ChatAuditEntry } from '../../server/chat/store';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';

/*
 * Chat threads: per user and project, only ever visible to their owner. No node serves inference
 * here, so completions answer 503 — after the pipeline has already stored the (redacted) user
 * message, which is what the thread tests need.
 */

describe.each(DB_KINDS)('chat threads on %s', (kind) => {
  let s: TestServer;
  let ada: { id: string; token: string };
  let bob: { id: string; token: string };
  const sdk = (token: string) => new OpenAI({ baseURL: `${s.cynode.gatewayUrl}/v1`, apiKey: token, maxRetries: 0 });

  beforeAll(async () => {
    s = await startTestServer(kind);
    ada = await s.createUser('ada');
    bob = await s.createUser('bob');
  });
  afterAll(async () => {
    await s?.close();
  });

  const threads = (token: string, query = '') => s.api.call(`/v1/chat/threads${query}`, { token });

  it('creates threads in the default project; each user lists only their own', async () => {
    const created = await s.api.call('/v1/chat/threads', { token: ada.token, body: { title: 'Trip planning' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.any(String), thread_id: created.body.id, title: 'Trip planning', project_id: expect.any(String) });
    const untitled = await s.api.call('/v1/chat/threads', { token: bob.token, body: {} });
    expect(untitled.status).toBe(201);
    expect(untitled.body.title).toBeNull();

    const adas = await threads(ada.token);
    expect(adas.status).toBe(200);
    expect(adas.body.threads.map((t: any) => t.id)).toEqual([created.body.id]);
    expect((await threads(bob.token)).body.threads.map((t: any) => t.id)).toEqual([untitled.body.id]);
    expect(Object.keys(adas.body.threads[0]).sort()).toEqual(['created_at', 'id', 'project_id', 'thread_id', 'title', 'updated_at']);

    // Across users: 404, whether the thread exists or not.
    expect((await s.api.call(`/v1/chat/threads/${created.body.id}`, { token: bob.token })).status).toBe(404);
    expect((await s.api.call(`/v1/chat/threads/${created.body.id}/messages`, { token: bob.token })).status).toBe(404);
    expect((await s.api.call(`/v1/chat/threads/${randomUUID()}`, { token: ada.token })).status).toBe(404);
    expect((await s.api.call(`/v1/chat/threads/${created.body.id}`, { token: ada.token })).body).toMatchObject({ id: created.body.id, title: 'Trip planning' });
    // Even an admin sees only their own threads through these endpoints.
    expect((await s.api.call(`/v1/chat/threads/${created.body.id}`, { token: s.adminToken })).status).toBe(404);
  });

  it('stores the newest user message, redacted, in the active thread (the one just created) before routing', async () => {
    const t = (await s.api.call('/v1/chat/threads', { token: ada.token, body: { title: 'active' } })).body;
    const err = await sdk(ada.token)
      .chat.completions.create({ model: 'llama3:8b', messages: [{ role: 'user', content: 'old question' }, { role: 'assistant', content: 'old answer' }, { role: 'user', content: 'my password=Hunter2Secret! and a question' }] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'cynodeai_inference_unavailable' });
    const messages = await s.api.call(`/v1/chat/threads/${t.id}/messages`, { token: ada.token });
    expect(messages.status).toBe(200);
    expect(messages.body.messages).toEqual([
      { id: expect.any(String), thread_id: t.id, role: 'user', content: 'my password=SECRET_REDACTED and a question', metadata: { redaction_kinds: ['password'] }, created_at: expect.any(String) },
    ]);
    // Used just now: it leads the list.
    expect((await threads(ada.token)).body.threads[0].id).toBe(t.id);
  });

  it('keeps writing to the active thread, and opens a new one once it has been idle for two hours', async () => {
    const carol = await s.createUser('carol');
    const ask = (content: string) => sdk(carol.token).chat.completions.create({ model: 'llama3:8b', messages: [{ role: 'user', content }] }).catch(() => {});
    await ask('first');
    await ask('second');
    const [first] = (await threads(carol.token)).body.threads;
    expect((await threads(carol.token)).body.threads).toHaveLength(1);
    expect((await s.api.call(`/v1/chat/threads/${first.id}/messages`, { token: carol.token })).body.messages.map((m: any) => m.content)).toEqual(['first', 'second']);

    // Two hours and a bit of silence later (the database's clock decides).
    await s.cynode.db.query(`UPDATE chat_threads SET updated_at = now() - interval '2 hours 1 minute' WHERE id = $1`, [first.id]);
    await ask('third');
    const after = (await threads(carol.token)).body.threads;
    expect(after).toHaveLength(2);
    expect(after[0].id).not.toBe(first.id);
    expect((await s.api.call(`/v1/chat/threads/${after[0].id}/messages`, { token: carol.token })).body.messages.map((m: any) => m.content)).toEqual(['third']);
    expect((await s.api.call(`/v1/chat/threads/${first.id}/messages`, { token: carol.token })).body.messages).toHaveLength(2);
  });

  it('appends a client\'s user message to a thread, redacted; other roles 400; another user\'s thread 404', async () => {
    const dan = await s.createUser('dan');
    const older = (await s.api.call('/v1/chat/threads', { token: dan.token, body: { title: 'older' } })).body;
    await s.api.call('/v1/chat/threads', { token: dan.token, body: { title: 'newer' } });
    const posted = await s.api.call(`/v1/chat/threads/${older.id}/messages`, { token: dan.token, body: { role: 'user', content: 'deploy with token ghp_abcdefghijklmnopqrstuvwxyz0123456789 please' } });
    expect(posted.status).toBe(201);
    expect(posted.body).toMatchObject({ thread_id: older.id, role: 'user', content: 'deploy with token SECRET_REDACTED please', metadata: { redaction_kinds: ['token'] } });

    // That thread is now the active one: the next completion lands there.
    await sdk(dan.token).chat.completions.create({ model: 'llama3:8b', messages: [{ role: 'user', content: 'and then?' }] }).catch(() => {});
    expect((await s.api.call(`/v1/chat/threads/${older.id}/messages`, { token: dan.token })).body.messages.map((m: any) => m.content)).toEqual(['deploy with token SECRET_REDACTED please', 'and then?']);

    const assistant = await s.api.call(`/v1/chat/threads/${older.id}/messages`, { token: dan.token, body: { role: 'assistant', content: 'I am the model' } });
    expect(assistant.status).toBe(400);
    expect(assistant.body.detail).toMatch(/only append user messages/);
    expect((await s.api.call(`/v1/chat/threads/${older.id}/messages`, { token: ada.token, body: { role: 'user', content: 'hi' } })).status).toBe(404);
    expect((await s.api.call(`/v1/chat/threads/${older.id}/messages`, { token: dan.token, body: { role: 'user' } })).status).toBe(400);
  });

  it('renames and deletes your own threads; titles are redacted; others get 404; the next completion opens a new thread', async () => {
    const erin = await s.createUser('erin');
    await sdk(erin.token).chat.completions.create({ model: 'llama3:8b', messages: [{ role: 'user', content: 'plan the trip' }] }).catch(() => {});
    const [t] = (await threads(erin.token)).body.threads;

    const renamed = await s.api.call(`/v1/chat/threads/${t.id}`, { token: erin.token, method: 'PATCH', body: { title: 'Trip with key ghp_abcdefghijklmnopqrstuvwxyz0123456789' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: t.id, title: 'Trip with key SECRET_REDACTED' });
    expect((await s.api.call(`/v1/chat/threads/${t.id}`, { token: erin.token, method: 'PATCH', body: { title: null } })).body.title).toBeNull();
    expect((await s.api.call(`/v1/chat/threads/${t.id}`, { token: ada.token, method: 'PATCH', body: { title: 'mine now' } })).status).toBe(404);
    expect((await s.api.call(`/v1/chat/threads/${t.id}`, { token: erin.token, method: 'PATCH', body: {} })).status).toBe(400);

    expect((await s.api.call(`/v1/chat/threads/${t.id}`, { token: ada.token, method: 'DELETE' })).status).toBe(404);
    const deleted = await s.api.call(`/v1/chat/threads/${t.id}`, { token: erin.token, method: 'DELETE' });
    expect(deleted.status).toBe(204);
    expect((await s.api.call(`/v1/chat/threads/${t.id}`, { token: erin.token })).status).toBe(404);
    expect((await s.api.call(`/v1/chat/threads/${t.id}/messages`, { token: erin.token })).status).toBe(404);
    expect((await s.api.call(`/v1/chat/threads/${t.id}`, { token: erin.token, method: 'DELETE' })).status).toBe(404);
    const audit = (await s.api.call('/v1/audit?action=chat_thread_deleted', { token: s.adminToken })).body;
    expect(JSON.stringify(audit)).toContain(t.id);
    expect(JSON.stringify(audit)).not.toContain('plan the trip');

    // The deleted thread was the active one: the next completion opens a new thread.
    await sdk(erin.token).chat.completions.create({ model: 'llama3:8b', messages: [{ role: 'user', content: 'start over' }] }).catch(() => {});
    const after = (await threads(erin.token)).body.threads;
    expect(after).toHaveLength(1);
    expect(after[0].id).not.toBe(t.id);
    expect((await s.api.call(`/v1/chat/threads/${after[0].id}/messages`, { token: erin.token })).body.messages.map((m: any) => m.content)).toEqual(['start over']);
  });

  it('takes X-Cynode-Thread-Id for one of your threads; another user\'s answers 404 thread_not_found', async () => {
    const adaThread = (await s.api.call('/v1/chat/threads', { token: ada.token, body: { title: 'named' } })).body;
    // A newer thread becomes the active one; the header still picks the named one.
    const newer = (await s.api.call('/v1/chat/threads', { token: ada.token, body: { title: 'newer' } })).body;
    await sdk(ada.token)
      .chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'to the named thread' }] }, { headers: { 'X-Cynode-Thread-Id': adaThread.id } })
      .catch(() => {});
    expect((await s.api.call(`/v1/chat/threads/${adaThread.id}/messages`, { token: ada.token })).body.messages.map((m: any) => m.content)).toEqual(['to the named thread']);
    expect((await s.api.call(`/v1/chat/threads/${newer.id}/messages`, { token: ada.token })).body.messages).toEqual([]);

    const stolen = await sdk(bob.token)
      .chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'into ada\'s thread' }] }, { headers: { 'X-Cynode-Thread-Id': adaThread.id } })
      .catch((e: unknown) => e);
    expect(stolen).toBeInstanceOf(OpenAI.NotFoundError);
    expect(stolen).toMatchObject({ status: 404, code: 'thread_not_found' });
    const garbage = await sdk(bob.token)
      .chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'X-Cynode-Thread-Id': 'not-a-thread' } })
      .catch((e: unknown) => e);
    expect(garbage).toMatchObject({ status: 404, code: 'thread_not_found' });
    // Nothing of bob's reached ada's thread.
    expect((await s.api.call(`/v1/chat/threads/${adaThread.id}/messages`, { token: ada.token })).body.messages).toHaveLength(1);
  });

  it('pages threads and messages with limit and offset, messages oldest first', async () => {
    const t = (await s.api.call('/v1/chat/threads', { token: bob.token, body: { title: 'paging' } })).body;
    for (const n of [1, 2, 3]) {
      await sdk(bob.token)
        .chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `message ${n}` }] }, { headers: { 'X-Cynode-Thread-Id': t.id } })
        .catch(() => {});
    }
    const first = await s.api.call(`/v1/chat/threads/${t.id}/messages?limit=2`, { token: bob.token });
    expect(first.body.messages.map((m: any) => m.content)).toEqual(['message 1', 'message 2']);
    expect(first.body.next_offset).toBe(2);
    const rest = await s.api.call(`/v1/chat/threads/${t.id}/messages?limit=2&offset=2`, { token: bob.token });
    expect(rest.body.messages.map((m: any) => m.content)).toEqual(['message 3']);
    expect(rest.body.next_offset).toBeUndefined();

    const page = await threads(bob.token, '?limit=1');
    expect(page.body.threads).toHaveLength(1);
    expect(page.body.next_offset).toBe(1);
    expect((await threads(bob.token, '?limit=1&offset=1')).body.threads).toHaveLength(1);
    expect((await threads(bob.token, '?limit=0')).status).toBe(400);
  });

  it('scopes threads to a project: project_id filters, and an unknown project answers 404', async () => {
    const project = await s.api.call('/v1/projects', { token: ada.token, body: { slug: 'ada-chat', display_name: 'Ada chat' } });
    expect(project.status).toBe(201);
    const inProject = await s.api.call('/v1/chat/threads', { token: ada.token, body: { project_id: 'ada-chat', title: 'in project' } });
    expect(inProject.status).toBe(201);
    expect(inProject.body.project_id).toBe(project.body.id);
    expect((await threads(ada.token, `?project_id=${project.body.id}`)).body.threads.map((t: any) => t.id)).toEqual([inProject.body.id]);
    expect((await threads(ada.token, '?project_id=ada-chat')).body.threads).toHaveLength(1);
    // Bob cannot see ada's project: 404, as for one that does not exist.
    expect((await s.api.call('/v1/chat/threads', { token: bob.token, body: { project_id: 'ada-chat' } })).status).toBe(404);
    expect((await s.api.call('/v1/chat/threads', { token: bob.token, body: { project_id: 'no-such-project' } })).status).toBe(404);
    expect((await threads(bob.token, '?project_id=ada-chat')).status).toBe(404);
    // A thread of another project cannot be named for a completion in this one.
    const err = await sdk(ada.token)
      .chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'X-Cynode-Thread-Id': inProject.body.id } })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 404, code: 'thread_not_found' });
  });

  it('stores answers with their audit rows, alone or in a batch; an answer to a deleted thread stores neither', async () => {
    const db = s.cynode.db;
    const dave = await s.createUser('dave');
    const open = async () => (await s.api.call('/v1/chat/threads', { token: dave.token, body: {} })).body.id as string;
    const [kept, other, gone] = [await open(), await open(), await open()];
    await s.api.call(`/v1/chat/threads/${gone}`, { method: 'DELETE', token: dave.token });
    const served = (requestId: string, threadId: string): ChatAuditEntry => ({
      userId: dave.id, projectId: null, threadId, outcome: 'success', errorCode: null, model: 'm', nodeId: null, stream: true,
      attempts: 1, redactionApplied: false, redactionKinds: [], durationMs: 12.4, requestId,
    });
    const answer = (threadId: string, content: string) => ({ id: randomUUID(), threadId, content, metadata: { model: 'm' }, audit: served(`answers-${content}`, threadId) });

    const lone = answer(kept, 'lone');
    expect(await appendAnswers(db, [lone])).toEqual(new Set([lone.id]));
    const batch = [answer(kept, 'b1'), answer(gone, 'b2'), answer(other, 'b3'), answer(kept, 'b4')];
    expect(await appendAnswers(db, batch)).toEqual(new Set([batch[0]!.id, batch[2]!.id, batch[3]!.id]));
    expect(await appendAnswers(db, [answer(gone, 'lone-gone')])).toEqual(new Set());

    const contents = async (threadId: string) => (await s.api.call(`/v1/chat/threads/${threadId}/messages`, { token: dave.token })).body.messages.map((m: any) => [m.role, m.content]);
    // One statement's rows may share a timestamp, so b1 and b4 have no order between them.
    const [first, ...rest] = await contents(kept);
    expect([first, rest.sort()]).toEqual([['assistant', 'lone'], [['assistant', 'b1'], ['assistant', 'b4']]]);
    expect(await contents(other)).toEqual([['assistant', 'b3']]);
    const audits = await db.query<any>(`SELECT request_id, thread_id, outcome, duration_ms, stream FROM chat_audit_log WHERE request_id LIKE 'answers-%' ORDER BY request_id`);
    expect(audits).toEqual([
      { request_id: 'answers-b1', thread_id: kept, outcome: 'success', duration_ms: 12, stream: true },
      { request_id: 'answers-b3', thread_id: other, outcome: 'success', duration_ms: 12, stream: true },
      { request_id: 'answers-b4', thread_id: kept, outcome: 'success', duration_ms: 12, stream: true },
      { request_id: 'answers-lone', thread_id: kept, outcome: 'success', duration_ms: 12, stream: true },
    ]);
  });

  it('appends messages alone or in a batch, each only into a thread that exists (and is active, when asked)', async () => {
    const db = s.cynode.db;
    const fay = await s.createUser('fay');
    const open = async () => (await s.api.call('/v1/chat/threads', { token: fay.token, body: {} })).body.id as string;
    const [fresh, idle] = [await open(), await open()];
    await db.query(`UPDATE chat_threads SET updated_at = now() - interval '3 hours' WHERE id = $1`, [idle]);
    const message = (threadId: string, content: string, activeWithinHours?: number) => ({ id: randomUUID(), threadId, role: 'user' as const, content, metadata: null, activeWithinHours });

    for (const messages of [[message(idle, 'alone, idle', 2)], [message(fresh, 'alone')]]) {
      const stored = await appendMessages(db, messages);
      expect([...stored.values()].map((m) => m.content)).toEqual(messages[0]!.content === 'alone' ? ['alone'] : []);
    }
    const batch = [message(fresh, 'one', 2), message(idle, 'idle', 2), message(idle, 'named'), message(randomUUID(), 'nowhere'), message(fresh, 'two')];
    const stored = await appendMessages(db, batch);
    expect([...stored.keys()].sort()).toEqual([batch[0]!.id, batch[2]!.id, batch[4]!.id].sort());
    expect(stored.get(batch[0]!.id)).toMatchObject({ thread_id: fresh, role: 'user', content: 'one', metadata: null, created_at: expect.any(Date) });
    const contents = async (threadId: string) => (await s.api.call(`/v1/chat/threads/${threadId}/messages`, { token: fay.token })).body.messages.map((m: any) => m.content);
    // One statement's rows may share a timestamp: 'one' and 'two' have no order between them.
    const [first, ...rest] = await contents(fresh);
    expect([first, rest.sort()]).toEqual(['alone', ['one', 'two']]);
    expect(await contents(idle)).toEqual(['named']);
  });

  it('writes one audit row per completion request, without content', async () => {
    const requestId = `threads-audit-${randomUUID()}`;
    await sdk(ada.token)
      .chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'audit me: token=abc123def456' }] }, { headers: { 'x-request-id': requestId } })
      .catch(() => {});
    const rows = await s.cynode.db.query<any>('SELECT * FROM chat_audit_log WHERE request_id = $1', [requestId]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ user_id: ada.id, outcome: 'error', error_code: 'cynodeai_inference_unavailable', model: 'm', redaction_applied: true, redaction_kinds: ['token'] });
    expect(JSON.stringify(rows[0])).not.toContain('audit me');
    expect(JSON.stringify(rows[0])).not.toContain('abc123def456');
  });
});
