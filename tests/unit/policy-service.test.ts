import { describe, expect, it } from 'vitest';
import type { Db } from '../../server/db';
import type { Authorizer } from '../../server/rbac/service';
import { DEFAULT_RULES } from '../../server/policy/default-rules';
import { PolicyService, type AccessQuestion } from '../../server/policy/service';

/*
 * Fail closed: whatever goes wrong around a decision (rules, subject, audit), the answer is deny,
 * and an allow is only answered once its audit row is written.
 */

interface Faults {
  rules?: boolean;
  subject?: boolean;
  audit?: boolean;
}

function fakeDb(faults: Faults, written: unknown[][]): Db {
  const answer = async (sql: string, params: readonly unknown[]): Promise<object[]> => {
    if (sql.includes('FROM policy_rules')) {
      if (faults.rules) throw new Error('connection refused');
      return DEFAULT_RULES.map((r) => ({ id: r.id, text: r.text, enabled: r.enabled }));
    }
    if (sql.includes('FROM users u')) {
      if (faults.subject) throw new Error('connection refused');
      return [{ id: params[0], handle: 'ada', groups: [], roles: [] }];
    }
    if (sql.includes('INSERT INTO access_audit')) {
      if (faults.audit) throw new Error('disk full');
      written.push(JSON.parse(params[0] as string));
      return [];
    }
    throw new Error(`unexpected statement: ${sql}`);
  };
  const query = <T extends object>(sql: string, params: readonly unknown[] = []) => answer(sql, params) as Promise<T[]>;
  return {
    kind: 'pglite',
    query,
    exec: async () => {},
    transaction: async (fn) => fn({ query, exec: async () => {} }),
    listen: async () => async () => {},
    notify: async () => {},
    close: async () => {},
  } as Db;
}

const USER = '6f1c1d1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f';
const question: AccessQuestion = { userId: USER, action: 'model.use', resource: { type: 'Model', id: 'llama3:8b' } };

async function started(faults: Faults) {
  const written: unknown[][] = [];
  const errors: string[] = [];
  const policy = new PolicyService(fakeDb(faults, written), {} as Authorizer, { onError: (_e, what) => errors.push(what), retryMs: 60_000 });
  const stop = await policy.start();
  return { policy, written, errors, stop };
}

describe('PolicyService decisions', () => {
  it('allows by the default rule and writes the decision with its rule before answering', async () => {
    const { policy, written, stop } = await started({});
    const d = await policy.decide(question, { requestId: 'req-1', ip: '::1', userAgent: undefined });
    expect(d).toEqual({ decision: 'allow', rules: ['default-model-use'], auditId: expect.any(String) });
    expect(written.flat()).toEqual([expect.objectContaining({ id: d.auditId, request_id: 'req-1', subject_user_id: USER, subject_handle: 'ada', action: 'model.use', resource_type: 'Model', resource_id: 'llama3:8b', decision: 'allow', rules: ['default-model-use'] })]);
    await stop();
  });

  it('denies when the rules cannot be loaded', async () => {
    const { policy, errors, written, stop } = await started({ rules: true });
    const d = await policy.decide(question);
    expect(d.decision).toBe('deny');
    expect(d.reason).toMatch(/could not be loaded/);
    expect(errors.length).toBeGreaterThan(0);
    // The deny is audited too.
    expect(written.flat()).toEqual([expect.objectContaining({ decision: 'deny' })]);
    await stop();
  });

  it('denies when the subject cannot be read', async () => {
    const { policy, stop } = await started({ subject: true });
    const d = await policy.decide(question);
    expect(d).toMatchObject({ decision: 'deny', reason: expect.stringMatching(/failed/) });
    await stop();
  });

  it('denies what it cannot audit, and says so', async () => {
    const { policy, errors, stop } = await started({ audit: true });
    expect(await policy.decide(question)).toEqual({ decision: 'deny', rules: [], reason: 'the decision could not be audited', auditId: null });
    expect(errors).toContain('an access decision could not be audited, so it is denied');
    await stop();
  });

  it('filters a list, one audited decision per item; an unknown action denies', async () => {
    const { policy, written, stop } = await started({});
    expect(await policy.permitted(USER, 'model.use', ['a', 'b'], (id) => ({ type: 'Model', id }))).toEqual(['a', 'b']);
    expect(written.flat()).toHaveLength(2);
    expect((await policy.decide({ ...question, action: 'model.fly' as never })).decision).toBe('deny');
    await stop();
  });
});
