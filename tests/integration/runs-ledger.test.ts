import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../server/db';
import { RunEventHub } from '../../server/runs/hub';
import { Ledger } from '../../server/runs/ledger';
import { insertRun } from '../../server/runs/record';
import type { RunEventRow } from '../../server/runs/store';
import { DB_KINDS, startTestServer, type TestServer } from '../support/harness';
import { until } from '../support/until';

/*
 * The ledger and the hub on a real database: dense sequences under concurrent appends,
 * idempotency keys, status events, and fan-out to many listeners from one read.
 */
describe.each(DB_KINDS)('run ledger on %s', (kind) => {
  let s: TestServer;
  let db: Db;
  let ledger: Ledger;
  let taskId: string;

  beforeAll(async () => {
    s = await startTestServer(kind);
    db = s.cynode.db;
    ledger = new Ledger(db);
    const t = await s.api.call('/v1/tasks', { token: s.adminToken, body: { prompt: 'ledger test', input_mode: 'commands' } });
    taskId = t.body.id;
  });
  afterAll(async () => {
    await s?.close();
  });

  const newRun = () => db.transaction((tx) => insertRun(tx, { taskId }));
  const seqsOf = async (runId: string) => (await ledger.read(runId, 0, 10_000)).map((e) => e.seq);

  it('numbers concurrent appends densely from 1, each caller contiguous, with the first status event first', async () => {
    const run = await newRun();
    expect(run.last_seq).toBe(1);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => ledger.append(run.id, Array.from({ length: 5 }, (_, j) => ({ kind: 'log' as const, stream: 'stdout' as const, message: `c${i} l${j}` })))),
    );
    for (const r of results) {
      const seqs = r.seqs as number[];
      expect(seqs.every((x, k) => k === 0 || x === seqs[k - 1]! + 1)).toBe(true);
    }
    const events = await ledger.read(run.id, 0, 10_000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 201 }, (_, i) => i + 1));
    expect(events[0]).toMatchObject({ kind: 'status', data: { status: 'pending' } });
    const head = (await db.query<{ last_seq: number }>('SELECT last_seq FROM runs WHERE id = $1', [run.id]))[0]!;
    expect(Number(head.last_seq)).toBe(201);
  });

  it('drops a repeated idempotency key (in the ledger or in the same batch) without leaving a gap', async () => {
    const run = await newRun();
    const first = await ledger.append(run.id, [
      { kind: 'log', stream: 'stdout', message: 'a', idempotencyKey: 'k1' },
      { kind: 'log', stream: 'stdout', message: 'a again', idempotencyKey: 'k1' },
      { kind: 'log', stream: 'stderr', message: 'b', idempotencyKey: 'k2' },
    ]);
    expect(first.seqs).toEqual([2, null, 3]);
    const again = await ledger.append(run.id, [
      { kind: 'log', stream: 'stdout', message: 'a', idempotencyKey: 'k1' },
      { kind: 'log', stream: 'stdout', message: 'c', idempotencyKey: 'k3' },
    ]);
    expect(again.seqs).toEqual([null, 4]);
    expect(await seqsOf(run.id)).toEqual([1, 2, 3, 4]);
    expect((await ledger.read(run.id, 1, 10)).map((e) => e.message)).toEqual(['a', 'b', 'c']);
  });

  it('appends to many runs at once stay dense per run; an append to a run that does not exist fails alone', async () => {
    const runs = await Promise.all(Array.from({ length: 10 }, () => newRun()));
    const missing = ledger.append('00000000-0000-4000-8000-000000000000', [{ kind: 'event', data: {} }]);
    const writes = runs.flatMap((r) => Array.from({ length: 10 }, (_, i) => ledger.append(r.id, [{ kind: 'log', stream: 'stdout', message: `line ${i}` }])));
    await expect(missing).rejects.toThrow(/does not exist/);
    await Promise.all(writes);
    for (const r of runs) {
      const events = await ledger.read(r.id, 1, 100);
      expect(events.map((e) => [e.seq, e.message])).toEqual(Array.from({ length: 10 }, (_, i) => [i + 2, `line ${i}`]));
    }
  });

  it('refuses an append the database could not store (400) before it shares a transaction; concurrent appends to other runs are all stored', async () => {
    const [mine, theirs] = await Promise.all([newRun(), newRun()]);
    const valid = Array.from({ length: 30 }, (_, i) => ledger.append(mine.id, [{ kind: 'log', stream: 'stdout', message: `line ${i}` }]));
    const refused = [
      ledger.append(theirs.id, [{ kind: 'log', stream: 'stdout', message: 'a\u0000b' }]),
      ledger.append(theirs.id, [{ kind: 'event', data: { note: 'x\ud800' } }]),
      ledger.append(theirs.id, [{ kind: 'event', data: JSON.parse('['.repeat(5000) + ']'.repeat(5000)) }]),
    ];
    for (const r of refused) await expect(r).rejects.toMatchObject({ status: 400, detail: expect.stringMatching(/^events\[0\]\.(message|data)/) });
    await Promise.all(valid);
    expect(await seqsOf(mine.id)).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
    expect(await seqsOf(theirs.id)).toEqual([1]);
  });

  it('a status change is an event and the run status in one write', async () => {
    const run = await newRun();
    await ledger.setStatus(run.id, 'running');
    await ledger.setStatus(run.id, 'failed', { exit_code: 3 }, 'exit code 3');
    const row = (await db.query<any>('SELECT status, error, started_at, ended_at, last_seq FROM runs WHERE id = $1', [run.id]))[0];
    expect(row).toMatchObject({ status: 'failed', error: 'exit code 3', last_seq: 3 });
    expect(row.started_at).not.toBeNull();
    expect(row.ended_at).not.toBeNull();
    const events = await ledger.read(run.id, 0, 10);
    expect(events.map((e) => e.data)).toEqual([{ status: 'pending' }, { status: 'running' }, { status: 'failed', exit_code: 3 }]);
  });

  it('the hub delivers every new event once, in order, to each of many listeners', async () => {
    const hub = new RunEventHub(db);
    await hub.start();
    try {
      const run = await newRun();
      await ledger.append(run.id, [{ kind: 'event', data: { before: true } }]);
      const got: RunEventRow[][] = Array.from({ length: 50 }, () => []);
      const offs = await Promise.all(got.map((list) => hub.subscribe(run.id, (events) => list.push(...events))));
      await Promise.all(Array.from({ length: 20 }, (_, i) => ledger.append(run.id, [{ kind: 'log', stream: 'stdout', message: `line ${i}` }])));
      await until('every listener to get 20 events', async () => got.every((l) => l.length >= 20));
      for (const list of got) expect(list.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 3));
      for (const off of offs) off();
      expect(hub.watchedRuns).toBe(0);
    } finally {
      await hub.stop();
    }
  });

  it('the hub finds events whose notification never came (its poll), and delivers them once', async () => {
    const hub = new RunEventHub(db, { pollMs: 200 });
    await hub.start();
    try {
      const run = await newRun();
      const got: RunEventRow[] = [];
      const off = await hub.subscribe(run.id, (events) => got.push(...events));
      // Written as a writer would, but without the NOTIFY (as if the LISTEN connection was down).
      await db.transaction(async (tx) => {
        await tx.query(`INSERT INTO run_events (run_id, seq, kind, message) VALUES ($1, 2, 'event', 'silent')`, [run.id]);
        await tx.query('UPDATE runs SET last_seq = 2 WHERE id = $1', [run.id]);
      });
      await until('the polled event', async () => got.length > 0);
      await ledger.append(run.id, [{ kind: 'event', message: 'notified' }]);
      await until('the notified event', async () => got.length > 1);
      expect(got.map((e) => [e.seq, e.message])).toEqual([
        [2, 'silent'],
        [3, 'notified'],
      ]);
      off();
    } finally {
      await hub.stop();
    }
  });
});
