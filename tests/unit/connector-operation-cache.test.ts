import { describe, expect, it } from 'vitest';
import type { HealthCall } from '../../server/connectors/executor-api';
import { OperationCache } from '../../server/connectors/executor/operation-cache';
import type { OperationSpec } from '../../server/connectors/types/contract';
import { operationNamed } from '../../server/connectors/types/mcp';

const call = (over: Partial<HealthCall> = {}): HealthCall => ({
  requestId: 'r',
  instanceId: 'i1',
  type: 'mcp',
  config: { transport: 'stdio', command: 'everything' },
  credential: { instanceId: 'i1', credentialId: 'c1', version: 1, jwe: '{"protected":"x"}' },
  timeoutMs: 1000,
  egressAllow: [],
  ...over,
});

function counting(names: string[]): { discover: () => Promise<OperationSpec[]>; count: () => number } {
  let n = 0;
  return { discover: async () => (n++, names.map(operationNamed)), count: () => n };
}

describe('the executor\'s cache of discovered operations', () => {
  it('discovers once per instance while its configuration and credential version stay the same', async () => {
    const cache = new OperationCache({ max: 10, ttlMs: 60_000 });
    const d = counting(['echo']);
    const [first, second] = await Promise.all([cache.get(call(), d.discover), cache.get(call(), d.discover)]);
    expect(first.map((o) => o.name)).toEqual(['echo']);
    expect(second).toBe(first);
    expect(d.count()).toBe(1);
    // A new sealing of the same credential version (a key rotation rewrap) discovers nothing new.
    await cache.get(call({ credential: { instanceId: 'i1', credentialId: 'c1', version: 1, jwe: 'other' } }), d.discover);
    expect(d.count()).toBe(1);
  });

  it('discovers again when the configuration, the credential version or the allow list changes, and after its time', async () => {
    let now = 0;
    const cache = new OperationCache({ max: 10, ttlMs: 1000, now: () => now });
    const d = counting(['echo']);
    await cache.get(call(), d.discover);
    await cache.get(call({ config: { transport: 'stdio', command: 'other' } }), d.discover);
    await cache.get(call({ credential: { instanceId: 'i1', credentialId: 'c1', version: 2, jwe: 'x' } }), d.discover);
    await cache.get(call({ credential: null }), d.discover);
    await cache.get(call({ egressAllow: ['10.0.0.0/8'] }), d.discover);
    expect(d.count()).toBe(5);
    await cache.get(call({ egressAllow: ['10.0.0.0/8'] }), d.discover);
    expect(d.count()).toBe(5);
    now = 1000;
    await cache.get(call({ egressAllow: ['10.0.0.0/8'] }), d.discover);
    expect(d.count()).toBe(6);
    // One entry per instance, whatever it was discovered with.
    expect(cache.size).toBe(1);
  });

  it('keeps no failure, and at most its bound of instances (least recently used out first)', async () => {
    const cache = new OperationCache({ max: 2, ttlMs: 60_000 });
    await expect(cache.get(call(), () => Promise.reject(new Error('server down')))).rejects.toThrow('server down');
    expect(cache.size).toBe(0);
    const d = counting(['echo']);
    await cache.get(call({ instanceId: 'a' }), d.discover);
    await cache.get(call({ instanceId: 'b' }), d.discover);
    await cache.get(call({ instanceId: 'a' }), d.discover);
    await cache.get(call({ instanceId: 'c' }), d.discover);
    expect(cache.size).toBe(2);
    expect(d.count()).toBe(3);
    await cache.get(call({ instanceId: 'a' }), d.discover);
    expect(d.count()).toBe(3);
    await cache.get(call({ instanceId: 'b' }), d.discover);
    expect(d.count()).toBe(4);
  });
});
