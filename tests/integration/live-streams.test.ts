import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../server/config/config';
import { Ledger } from '../../server/runs/ledger';
import { DB_KINDS, startTestServer, type DbKind, type TestServer } from '../support/harness';
import { openSse, type SseFrame, type SseSession } from '../support/sse';
import { until } from '../support/until';

/*
 * Live event streams outlast the request that opened them: they are capped per user and per
 * address (not by the request cap), and each ends once its caller signs out, is disabled, loses
 * the key it came with, or may no longer see what it shows.
 */

/** Ample for a change to reach every open stream; a stream that outlives it was not closed. */
const CLOSE_DEADLINE_MS = 20_000;

/** The status a stream request gets from another loopback address (127.0.0.2 on Linux). */
function streamStatusFrom(url: string, token: string, localAddress: string): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, localAddress, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    req.on('error', reject);
    req.end();
  });
}

interface Watched {
  session: SseSession;
  frames: SseFrame[];
  isOpen(): boolean;
}

/** A test server for one describe block, and what its tests use to open, feed and watch streams. */
class StreamBench {
  s!: TestServer;
  private readonly opened: Watched[] = [];

  constructor(kind: DbKind, overrides: Partial<ServerConfig>) {
    beforeAll(async () => {
      this.s = await startTestServer(kind, overrides);
    });
    afterAll(async () => {
      for (const w of this.opened) w.session.stop();
      await this.s?.close();
    });
  }

  async newRun(token: string, projectId?: string): Promise<{ taskId: string; runId: string }> {
    const task = await this.s.api.call('/v1/tasks', { token, body: { prompt: 'true', input_mode: 'commands', ...(projectId ? { project_id: projectId } : {}) } });
    expect(task.status, task.text).toBe(201);
    const run = await this.s.api.call('/v1/runs', { token, body: { task_id: task.body.id } });
    expect(run.status, run.text).toBe(201);
    return { taskId: task.body.id, runId: run.body.id };
  }

  streamUrl(runId: string): string {
    return `${this.s.cynode.gatewayUrl}/v1/runs/${runId}/events/stream`;
  }

  /** Written straight to the ledger, as a node's output would be. */
  async log(runId: string, message: string): Promise<void> {
    await new Ledger(this.s.cynode.db).append(runId, [{ kind: 'log', stream: 'stdout', message }]);
  }

  async watch(url: string, token: string): Promise<Watched> {
    const frames: SseFrame[] = [];
    const session = await openSse(url, { token, onFrame: (f) => void frames.push(f) });
    expect(session.status).toBe(200);
    let open = true;
    void session.ended.finally(() => (open = false));
    const w = { session, frames, isOpen: () => open };
    this.opened.push(w);
    return w;
  }

  /** The log messages a stream delivered, from run events and task log lines alike. */
  messages(w: Watched): string[] {
    return w.frames
      .filter((f) => f.event === 'run.event' || f.event === 'log')
      .map((f) => {
        const data = JSON.parse(f.data);
        return data.event?.message ?? data.message;
      });
  }

  async ends(w: Watched, why: string): Promise<void> {
    await until(`the stream to end after ${why}`, async () => !w.isOpen(), CLOSE_DEADLINE_MS);
  }

  /** A stream that is still open shows an event written now. */
  async stillLive(w: Watched, runId: string, marker: string): Promise<void> {
    await this.log(runId, marker);
    await until(`${marker} to arrive`, async () => this.messages(w).includes(marker), CLOSE_DEADLINE_MS);
  }
}

describe.each(DB_KINDS)('live stream caps on %s', (kind) => {
  const t = new StreamBench(kind, { maxConcurrentRequests: 2, maxStreamsPerUser: 2, maxStreamsPerAddress: 3 });

  it("holds one user's streams to their cap (429 to them only), and streams take no request slots", async () => {
    const { s } = t;
    const alice = await s.createUser('cap-alice');
    const bob = await s.createUser('cap-bob');
    const carol = await s.createUser('cap-carol');
    const { runId } = await t.newRun(alice.token);
    const a1 = await t.watch(t.streamUrl(runId), alice.token);
    await t.watch(t.streamUrl(runId), alice.token);

    const third = await s.api.call(`/v1/runs/${runId}/events/stream`, { token: alice.token });
    expect(third.status).toBe(429);
    expect(third.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // Two streams are open and the request cap is two: requests are still served, hers too.
    expect((await s.api.call('/v1/users/me', { token: s.adminToken })).status).toBe(200);
    expect((await s.api.call(`/v1/runs/${runId}`, { token: alice.token })).status).toBe(200);

    // Another user streams; with that, this address holds its three.
    const bobRun = await t.newRun(bob.token);
    await t.watch(t.streamUrl(bobRun.runId), bob.token);
    expect((await s.api.call(`/v1/runs/${bobRun.runId}/events/stream`, { token: bob.token })).status).toBe(429);
    if (process.platform === 'linux') {
      // Another address has its own share.
      const carolRun = await t.newRun(carol.token);
      expect(await streamStatusFrom(t.streamUrl(carolRun.runId), carol.token, '127.0.0.2')).toBe(200);
    }

    // A stream that closes gives its place back.
    a1.session.stop();
    const again = await until('a place for a new stream', async () => {
      const res = await openSse(t.streamUrl(runId), { token: alice.token, onFrame: () => {} });
      if (res.status === 200) return res;
      expect(res.status).toBe(429);
      return undefined;
    });
    again.stop();
  });
});

describe.each(DB_KINDS)('live streams after access changes on %s', (kind) => {
  const t = new StreamBench(kind, {});

  it('sign-out ends the streams of that session, run and task streams alike, and no other', async () => {
    const { s } = t;
    const user = await s.createUser('out-dora');
    const other = await s.api.login('out-dora', 'out-dora-password-1');
    const { taskId, runId } = await t.newRun(user.token);
    const run = await t.watch(t.streamUrl(runId), user.token);
    const task = await t.watch(`${s.cynode.gatewayUrl}/v1/tasks/${taskId}/logs?follow=true`, user.token);
    const kept = await t.watch(t.streamUrl(runId), other.access_token);
    await t.stillLive(run, runId, 'before sign-out');

    expect((await s.api.call('/v1/auth/logout', { token: user.token, body: {} })).status).toBe(204);
    await t.ends(run, 'sign-out');
    await t.ends(task, 'sign-out');
    await t.log(runId, 'after sign-out');
    expect(t.messages(run)).not.toContain('after sign-out');
    // Her other session was not signed out: its stream goes on.
    await t.stillLive(kept, runId, 'other session');
    kept.session.stop();
  });

  it("disabling a user ends that user's streams", async () => {
    const { s } = t;
    const user = await s.createUser('off-emil');
    const { runId } = await t.newRun(user.token);
    const run = await t.watch(t.streamUrl(runId), user.token);
    await t.stillLive(run, runId, 'before disable');
    expect((await s.api.call(`/v1/users/${user.id}/disable`, { method: 'POST', token: s.adminToken })).status).toBe(200);
    await t.ends(run, 'the user was disabled');
  });

  it('revoking an API key ends the streams opened with it, and no other', async () => {
    const { s } = t;
    const user = await s.createUser('key-fay');
    const key = await s.api.call('/v1/api-keys', { token: user.token, body: { name: 'stream' } });
    expect(key.status).toBe(201);
    const { runId } = await t.newRun(user.token);
    const byKey = await t.watch(t.streamUrl(runId), key.body.key);
    const bySession = await t.watch(t.streamUrl(runId), user.token);
    await t.stillLive(byKey, runId, 'before revoke');

    expect((await s.api.call(`/v1/api-keys/${key.body.id}`, { method: 'DELETE', token: user.token })).status).toBe(204);
    await t.ends(byKey, 'the key was revoked');
    await t.stillLive(bySession, runId, 'after revoke');
    bySession.session.stop();
  });

  it('removing the role binding that let a user see a run ends their stream of it, and no other', async () => {
    const { s } = t;
    const owner = await s.createUser('own-gus');
    const viewer = await s.createUser('view-hal');
    const project = await s.api.call('/v1/projects', { token: owner.token, body: { slug: 'streamed', display_name: 'Streamed' } });
    expect(project.status).toBe(201);
    const binding = await s.api.call('/v1/role-bindings', {
      token: owner.token,
      body: { subject_type: 'user', subject_id: viewer.id, role: 'viewer', scope_type: 'project', scope_id: project.body.id },
    });
    expect(binding.status).toBe(201);
    const { runId } = await t.newRun(owner.token, project.body.id);
    const viewed = await t.watch(t.streamUrl(runId), viewer.token);
    const owned = await t.watch(t.streamUrl(runId), owner.token);
    await t.stillLive(viewed, runId, 'while bound');

    expect((await s.api.call(`/v1/role-bindings/${binding.body.id}`, { method: 'DELETE', token: owner.token })).status).toBe(204);
    expect((await s.api.call(`/v1/runs/${runId}`, { token: viewer.token })).status).toBe(404);
    await t.ends(viewed, 'the binding was removed');
    await t.stillLive(owned, runId, 'after unbinding');
    owned.session.stop();
  });
});
