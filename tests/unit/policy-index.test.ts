import { cedar } from '../../server/policy/cedar';
import type { PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { describe, expect, it } from 'vitest';
import { PolicyEngine, type PolicyRule } from '../../server/policy/engine';
import type { PolicyRequest, PolicyResource } from '../../server/policy/request';
import { ScopeIndex, indexedRule, type Side } from '../../server/policy/scope-index';

function parsed(id: string, text: string) {
  const answer = cedar.policyToJson(text);
  if (answer.type !== 'success') throw new Error(JSON.stringify(answer.errors));
  return indexedRule(id, answer.json as PolicyJson);
}

const side = (type: string, id: string, ancestors: string[] = []): Side => {
  const key = `${type}::${JSON.stringify(id)}`;
  return { key, type, ancestors: new Set([key, ...ancestors]) };
};

describe('ScopeIndex', () => {
  const rules = [
    parsed('any', 'permit (principal, action, resource);'),
    parsed('alice', 'permit (principal == User::"alice", action == Action::"model.use", resource);'),
    parsed('lab', 'permit (principal in Group::"lab", action == Action::"model.use", resource == Model::"x");'),
    parsed('users', 'permit (principal is User, action in [Action::"connector.invoke", Action::"model.use"], resource is Model);'),
    parsed('lab-agents', 'permit (principal is Agent in Role::"lab", action, resource in ConnectorType::"imap");'),
    parsed('imap-ops', 'forbid (principal, action == Action::"connector.invoke", resource is Operation in ConnectorType::"imap");'),
  ];
  const index = new ScopeIndex(rules);
  const ids = (principal: Side, action: string, resource: Side) => index.candidates({ principal, action: side('Action', action), resource }).map((i) => rules[i]!.id);

  it('returns exactly the rules whose three scope heads match', () => {
    const alice = side('User', 'alice', ['Group::"lab"']);
    expect(ids(alice, 'model.use', side('Model', 'x'))).toEqual(['any', 'alice', 'lab', 'users']);
    expect(ids(alice, 'model.use', side('Model', 'y'))).toEqual(['any', 'alice', 'users']);
    expect(ids(side('User', 'bob'), 'model.use', side('Model', 'x'))).toEqual(['any', 'users']);
    expect(ids(side('User', 'bob'), 'connector.manage', side('Model', 'x'))).toEqual(['any']);
  });

  it('matches `is T in E` on both the type and the hierarchy', () => {
    const op = side('Operation', 'c1/list', ['Connector::"c1"', 'ConnectorType::"imap"']);
    expect(ids(side('Agent', 'a1', ['Role::"lab"']), 'connector.invoke', op)).toEqual(['any', 'lab-agents', 'imap-ops']);
    expect(ids(side('User', 'lab', ['Role::"lab"']), 'connector.invoke', op)).toEqual(['any', 'imap-ops']);
    expect(ids(side('Agent', 'a1', ['Role::"lab"']), 'connector.invoke', side('Operation', 'c2/list', ['ConnectorType::"smtp"']))).toEqual(['any']);
  });

  it('records which context attributes a rule reads', () => {
    expect(parsed('a', 'permit (principal, action, resource) when { context has requestSize && context.requestSize > 3 };').context).toEqual({ all: false, attrs: new Set(['requestSize']) });
    expect(parsed('b', 'permit (principal, action, resource) when { context.time.toTime() < duration("1h") };').context).toEqual({ all: false, attrs: new Set(['time']) });
    expect(parsed('c', 'permit (principal, action, resource) when { context == {} };').context.all).toBe(true);
    expect(parsed('d', 'permit (principal, action, resource) when { principal has handle };').context).toEqual({ all: false, attrs: new Set() });
  });
});

/** A small seeded generator, so a failure can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

const ACTIONS = ['model.use', 'connector.invoke', 'connector.install', 'connector.manage', 'tool.call'];

function randomRule(r: ReturnType<typeof random>, id: string): PolicyRule {
  const k = () => r.int(4);
  const principal = r.pick([
    () => 'principal',
    () => `principal == User::"u${k()}"`,
    () => `principal in Group::"g${k()}"`,
    () => `principal in Role::"r${k()}"`,
    () => 'principal is User',
    () => 'principal is Agent',
    () => `principal is User in Group::"g${k()}"`,
    () => `principal is Agent in Role::"r${k()}"`,
  ])();
  const action = r.pick([
    () => 'action',
    () => `action == Action::"${r.pick(ACTIONS)}"`,
    () => `action in [Action::"${r.pick(ACTIONS)}", Action::"${r.pick(ACTIONS)}"]`,
  ])();
  const resource = r.pick([
    () => 'resource',
    () => `resource == Model::"m${k()}"`,
    () => 'resource is Model',
    () => `resource in ConnectorType::"t${k()}"`,
    () => `resource in Connector::"c${k()}"`,
    () => `resource == Operation::"c${k()}/op${k()}"`,
    () => `resource is Operation in Project::"p${k()}"`,
    () => `resource in Project::"p${k()}"`,
    () => 'resource is Connector',
    () => `resource == Tool::"n${k()}.op${k()}"`,
    () => 'resource is Tool',
  ])();
  const condition = r.pick([
    () => '',
    () => '',
    () => ` when { context has requestSize && context.requestSize > ${r.int(2000)} }`,
    () => ` unless { context.time.toTime() < duration("${r.int(24)}h") }`,
    () => ` when { principal is User && principal.handle == "h${k()}" }`,
    () => ` when { resource is Operation && resource.name == "op${k()}" }`,
    () => ` when { resource is Connector && resource has ownerUser && resource.ownerUser == principal }`,
    () => ` when { context has task && context.task in Project::"p${k()}" }`,
    () => ` when { principal is Agent && principal.user.handle == "h${k()}" }`,
    () => ` when { resource is Tool && resource.readOnly }`,
    () => ` when { resource is Tool && resource.namespace == "n${k()}" }`,
    // Overflows for most sizes: a rule that fails while evaluating.
    () => ` when { context has requestSize && context.requestSize * 4611686018427387904 > 0 }`,
  ])();
  return { id, text: `${r.next() < 0.3 ? 'forbid' : 'permit'} (${principal}, ${action}, ${resource})${condition};`, enabled: r.next() < 0.95 };
}

function randomRequest(r: ReturnType<typeof random>): PolicyRequest {
  const k = () => r.int(4);
  const some = (prefix: string) => [...new Set(Array.from({ length: r.int(3) }, () => `${prefix}${k()}`))];
  const connector = { id: `c${k()}`, type: `t${k()}`, ...(r.next() < 0.5 ? { ownerUser: `u${k()}` } : { ownerGroup: `g${k()}` }), ...(r.next() < 0.5 ? { project: `p${k()}` } : {}) };
  const resource: PolicyResource = r.pick<() => PolicyResource>([
    () => ({ type: 'Model', id: `m${k()}` }),
    () => ({ type: 'Operation', name: `op${k()}`, connector }),
    () => ({ type: 'Connector', connector }),
    () => ({ type: 'ConnectorType', id: `t${k()}` }),
    () => ({ type: 'Tool', name: `n${k()}.op${k()}`, readOnly: r.next() < 0.5 }),
  ])();
  const user = { id: `u${k()}`, handle: `h${k()}`, roles: some('r'), groups: some('g') };
  return {
    subject: r.next() < 0.3 ? { user, agent: { id: `a${k()}`, role: `r${k()}` } } : { user },
    action: r.pick(ACTIONS),
    resource,
    context: {
      time: new Date(Date.UTC(2026, 11, 5, r.int(24))),
      ...(r.next() < 0.5 ? { requestSize: r.int(2000) } : {}),
      ...(r.next() < 0.3 ? { task: `t${k()}`, project: `p${k()}` } : {}),
    },
  };
}

describe('ScopeIndex against the whole rule set', () => {
  it('gives the same decisions, deciding rules and reasons over many random rule sets and requests', () => {
    const r = random(14);
    let allowed = 0;
    let forbidden = 0;
    let failed = 0;
    let compared = 0;
    for (let set = 0; set < 40; set++) {
      const rules = Array.from({ length: 5 + r.int(40) }, (_, i) => randomRule(r, `r${set}-${i}`));
      const indexed = PolicyEngine.create({ cacheSize: 0 });
      const cached = PolicyEngine.create();
      const whole = PolicyEngine.create({ index: false, cacheSize: 0 });
      // Random rules may fail validation (an attribute on the wrong type); all three load them alike.
      const loaded = whole.setRules(rules);
      expect(indexed.setRules(rules)).toEqual(loaded);
      expect(cached.setRules(rules)).toEqual(loaded);
      for (let q = 0; q < 40; q++) {
        const request = randomRequest(r);
        const expected = whole.authorize(request);
        const context = JSON.stringify(request);
        expect(indexed.authorize(request), context).toEqual(expected);
        // Asked twice, so the second answer may come from the cache.
        expect(cached.authorize(request), context).toEqual(expected);
        expect(cached.authorize(request), context).toEqual(expected);
        if (expected.decision === 'allow') allowed++;
        else if (expected.reason?.includes('a rule failed')) failed++;
        else if (expected.rules.length > 0) forbidden++;
        compared++;
      }
    }
    // The generator must produce every kind of outcome for the comparison to mean anything.
    expect(allowed).toBeGreaterThan(compared / 20);
    expect(forbidden).toBeGreaterThan(compared / 50);
    expect(failed).toBeGreaterThan(0);
    expect(allowed + forbidden + failed).toBeLessThan(compared - compared / 20);
  });
});
