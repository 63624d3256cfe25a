import { describe, expect, it } from 'vitest';
import { DEFAULT_RULES } from '../../server/policy/default-rules';
import { PolicyEngine, type PolicyRule } from '../../server/policy/engine';
import type { ConnectorRef, PolicyRequest, UserSubject } from '../../server/policy/request';

const alice: UserSubject = { id: 'u-alice', handle: 'alice', roles: ['user'], groups: ['lab'] };
const bob: UserSubject = { id: 'u-bob', handle: 'bob', roles: ['user'], groups: [] };
const admin: UserSubject = { id: 'u-admin', handle: 'root', roles: ['admin'], groups: [] };
const alicesMail: ConnectorRef = { id: 'c-1', type: 'imap', ownerUser: 'u-alice' };
const labsMail: ConnectorRef = { id: 'c-2', type: 'imap', ownerGroup: 'lab', project: 'p-1' };

const useModel = (user: UserSubject, model: string): PolicyRequest => ({ subject: { user }, action: 'model.use', resource: { type: 'Model', id: model } });
const invoke = (user: UserSubject, connector: ConnectorRef, name = 'list'): PolicyRequest => ({ subject: { user }, action: 'connector.invoke', resource: { type: 'Operation', name, connector } });
const rule = (id: string, text: string): PolicyRule => ({ id, text, enabled: true });

function engineWith(rules: readonly PolicyRule[], options: Parameters<typeof PolicyEngine.create>[0] = {}): PolicyEngine {
  const engine = PolicyEngine.create(options);
  expect(engine.setRules(rules)).toEqual({ ok: true });
  return engine;
}

describe('PolicyEngine: default deny and the default rules', () => {
  it('denies everything when no rule allows it, saying so', () => {
    const engine = engineWith([]);
    expect(engine.authorize(useModel(alice, 'llama3'))).toEqual({ decision: 'deny', rules: [], reason: 'no rule allows this (default deny)' });
  });

  it('keeps today\'s behaviour: every user uses every model; owners and owning groups invoke their connectors', () => {
    const engine = engineWith(DEFAULT_RULES);
    expect(engine.authorize(useModel(bob, 'llama3'))).toEqual({ decision: 'allow', rules: ['default-model-use'] });
    expect(engine.authorize(invoke(alice, alicesMail))).toEqual({ decision: 'allow', rules: ['default-connector-owner'] });
    expect(engine.authorize(invoke(alice, labsMail))).toEqual({ decision: 'allow', rules: ['default-connector-owner-group'] });
    expect(engine.authorize(invoke(bob, alicesMail)).decision).toBe('deny');
    expect(engine.authorize(invoke(bob, labsMail)).decision).toBe('deny');
  });

  it('lets users install connectors they own and admins install or manage any', () => {
    const engine = engineWith(DEFAULT_RULES);
    const install = (user: UserSubject, connector: ConnectorRef) => engine.authorize({ subject: { user }, action: 'connector.install', resource: { type: 'Connector', connector } });
    const manage = (user: UserSubject, connector: ConnectorRef) => engine.authorize({ subject: { user }, action: 'connector.manage', resource: { type: 'Connector', connector } });
    expect(install(alice, alicesMail)).toEqual({ decision: 'allow', rules: ['default-connector-install'] });
    expect(install(bob, alicesMail).decision).toBe('deny');
    expect(install(admin, alicesMail)).toEqual({ decision: 'allow', rules: ['default-admin-connectors'] });
    expect(manage(admin, labsMail)).toEqual({ decision: 'allow', rules: ['default-admin-connectors'] });
    expect(manage(alice, alicesMail).decision).toBe('deny');
  });

  it('every default rule validates against the schema', () => {
    const engine = PolicyEngine.create();
    for (const r of DEFAULT_RULES) expect(engine.validate(r.text), r.id).toEqual({ ok: true });
  });
});

describe('PolicyEngine: forbid, restrictions and agents', () => {
  it('a matching forbid beats any permit and is named', () => {
    const engine = engineWith([...DEFAULT_RULES, rule('no-lab-mail', 'forbid (principal in Group::"lab", action == Action::"connector.invoke", resource in ConnectorType::"imap");')]);
    expect(engine.authorize(invoke(alice, alicesMail))).toEqual({ decision: 'deny', rules: ['no-lab-mail'] });
    expect(engine.authorize(useModel(alice, 'llama3')).decision).toBe('allow');
  });

  it('restricts a model to a group when the default is replaced', () => {
    const rules = [
      ...DEFAULT_RULES.filter((r) => r.id !== 'default-model-use'),
      rule('models-except-x', 'permit (principal, action == Action::"model.use", resource is Model) unless { resource == Model::"x" };'),
      rule('x-for-lab', 'permit (principal in Group::"lab", action == Action::"model.use", resource == Model::"x");'),
    ];
    const engine = engineWith(rules);
    expect(engine.authorize(useModel(alice, 'x'))).toEqual({ decision: 'allow', rules: ['x-for-lab'] });
    expect(engine.authorize(useModel(bob, 'x')).decision).toBe('deny');
    expect(engine.authorize(useModel(bob, 'y'))).toEqual({ decision: 'allow', rules: ['models-except-x'] });
  });

  it('restricts a model with a forbid kept beside the default', () => {
    const engine = engineWith([...DEFAULT_RULES, rule('x-only-lab', 'forbid (principal, action == Action::"model.use", resource == Model::"x") unless { principal in Group::"lab" };')]);
    expect(engine.authorize(useModel(alice, 'x'))).toEqual({ decision: 'allow', rules: ['default-model-use'] });
    expect(engine.authorize(useModel(bob, 'x'))).toEqual({ decision: 'deny', rules: ['x-only-lab'] });
  });

  it('an agent acting for a user gets only what both its role and the user may do', () => {
    const agentRule = rule('mail-reader-imap', 'permit (principal is Agent in Role::"mail-reader", action == Action::"connector.invoke", resource in ConnectorType::"imap") when { resource.name == "list" };');
    const engine = engineWith([...DEFAULT_RULES, agentRule]);
    const asAgent = (user: UserSubject, role: string, connector: ConnectorRef, name = 'list'): PolicyRequest => ({ ...invoke(user, connector, name), subject: { user, agent: { id: 'a-1', role } } });

    // Both allow: the decision names the user's rule and the agent's.
    expect(engine.authorize(asAgent(alice, 'mail-reader', alicesMail))).toEqual({ decision: 'allow', rules: ['default-connector-owner', 'mail-reader-imap'] });
    // The role may not (another operation, another role): denied although the user may.
    expect(engine.authorize(asAgent(alice, 'mail-reader', alicesMail, 'send'))).toMatchObject({ decision: 'deny', reason: 'agent: no rule allows this (default deny)' });
    expect(engine.authorize(asAgent(alice, 'planner', alicesMail)).decision).toBe('deny');
    // The role may, the user may not: denied.
    expect(engine.authorize(asAgent(bob, 'mail-reader', alicesMail))).toMatchObject({ decision: 'deny', reason: 'user: no rule allows this (default deny)' });
    // An agent whose role is called admin is not an admin.
    const manage: PolicyRequest = { subject: { user: admin, agent: { id: 'a-2', role: 'admin' } }, action: 'connector.manage', resource: { type: 'Connector', connector: alicesMail } };
    expect(engine.authorize(manage)).toMatchObject({ decision: 'deny', reason: 'agent: no rule allows this (default deny)' });
    // Models: the default rule covers agents too, and a user restriction still applies through it.
    expect(engine.authorize({ ...useModel(alice, 'llama3'), subject: { user: alice, agent: { id: 'a-1', role: 'planner' } } }).decision).toBe('allow');
  });

  it('explains which rules were considered in each pass', () => {
    const engine = engineWith(DEFAULT_RULES);
    const e = engine.explain(invoke(alice, labsMail));
    expect(e.decision).toBe('allow');
    expect(e.considered.sort()).toEqual(['default-connector-owner', 'default-connector-owner-group']);
    expect(e.passes).toHaveLength(1);
    expect(e.passes[0]).toMatchObject({ who: 'user', decision: 'allow', rules: ['default-connector-owner-group'], cached: false });
  });
});

describe('PolicyEngine: validation', () => {
  const engine = PolicyEngine.create();

  it('accepts a well-formed rule', () => {
    expect(engine.validate('permit (principal in Group::"lab", action == Action::"model.use", resource == Model::"x");')).toEqual({ ok: true });
  });

  it('names an unknown action', () => {
    const v = engine.validate('permit (principal, action == Action::"model.usee", resource);');
    expect(v.ok).toBe(false);
    expect(!v.ok && v.problems.join('\n')).toContain('Action::"model.usee"');
  });

  it('names a parse error, an unknown attribute, an unchecked optional attribute', () => {
    const problems = (text: string) => {
      const v = engine.validate(text);
      expect(v.ok, text).toBe(false);
      return v.ok ? '' : v.problems.join('\n');
    };
    expect(problems('permit (principal, action, resourc);')).toContain('resourc');
    expect(problems('permit (principal is User, action == Action::"model.use", resource) when { principal.email == "x" };')).toContain('email');
    expect(problems('forbid (principal, action == Action::"model.use", resource) when { context.requestSize > 10 };')).toContain('requestSize');
    expect(problems('permit (principal, action, resource is Mailbox);')).toContain('Mailbox');
  });

  it('wants exactly one static policy per rule', () => {
    expect(engine.validate('permit (principal, action, resource); forbid (principal, action, resource);')).toEqual({ ok: false, problems: ['a rule holds exactly one policy; found 2'] });
    expect(engine.validate('')).toEqual({ ok: false, problems: ['a rule holds exactly one policy; found 0'] });
    expect(engine.validate('permit (principal == ?principal, action, resource);').ok).toBe(false);
  });
});

describe('PolicyEngine: fails closed', () => {
  it('denies an unknown action, naming it', () => {
    const engine = engineWith([rule('all', 'permit (principal, action, resource);')]);
    expect(engine.authorize({ ...useModel(alice, 'x'), action: 'model.train' })).toEqual({ decision: 'deny', rules: [], reason: 'unknown action "model.train"' });
  });

  it('denies when a rule fails while evaluating, even if another permits', () => {
    // Overflows at run time (the validator cannot see it); Cedar alone would skip the forbid.
    const engine = engineWith([...DEFAULT_RULES, rule('overflowing', 'forbid (principal, action == Action::"model.use", resource) when { context has requestSize && context.requestSize * 9223372036854775807 > 0 };')]);
    const d = engine.authorize({ ...useModel(alice, 'x'), context: { requestSize: 10 } });
    expect(d.decision).toBe('deny');
    expect(d.rules).toEqual(['overflowing']);
    expect(d.reason).toContain('overflowing');
    expect(engine.authorize({ ...useModel(alice, 'x'), context: { requestSize: 0 } }).decision).toBe('allow');
  });

  it('denies when Cedar refuses the request', () => {
    const engine = engineWith([...DEFAULT_RULES, rule('big', 'forbid (principal, action == Action::"model.use", resource) when { context has requestSize && context.requestSize > 1000000 };')]);
    const d = engine.authorize({ ...useModel(alice, 'x'), context: { requestSize: 1.5 } });
    expect(d.decision).toBe('deny');
    expect(d.reason).toMatch(/^policy engine error/);
  });

  it('denies a malformed request', () => {
    const engine = engineWith([rule('all', 'permit (principal, action, resource);')]);
    const d = engine.authorize({ ...useModel(alice, 'x'), resource: { type: 'Mailbox', id: 'x' } as never });
    expect(d).toMatchObject({ decision: 'deny', rules: [] });
    expect(d.reason).toMatch(/^policy engine error/);
  });

  it('denies everything while a loaded rule does not parse, naming it', () => {
    const engine = PolicyEngine.create();
    const v = engine.setRules([...DEFAULT_RULES, rule('broken', 'permit (principal, action, resource')]);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.problems[0]).toMatch(/^broken: /);
    const d = engine.authorize(useModel(alice, 'x'));
    expect(d.decision).toBe('deny');
    expect(d.reason).toContain('broken');
    // Fixing the set restores decisions.
    expect(engine.setRules(DEFAULT_RULES)).toEqual({ ok: true });
    expect(engine.authorize(useModel(alice, 'x')).decision).toBe('allow');
  });

  it('loads rules that fail schema validation but reports them; disabled rules are ignored', () => {
    const engine = PolicyEngine.create();
    const rules = [...DEFAULT_RULES, rule('typo', 'permit (principal, action == Action::"model.usee", resource);'), { id: 'off', text: 'forbid (principal, action, resource);', enabled: false }];
    const v = engine.setRules(rules);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.problems.join('\n')).toContain('typo: ');
    expect(engine.authorize(useModel(alice, 'x'))).toEqual({ decision: 'allow', rules: ['default-model-use'] });
    // Reloading (texts already checked) reports the same, under the rule's current id.
    expect(engine.setRules(rules)).toEqual(v);
    const renamed = engine.setRules(rules.map((r) => (r.id === 'typo' ? { ...r, id: 'typo-2' } : r)));
    expect(!renamed.ok && renamed.problems.join('\n')).toContain('typo-2: ');
  });
});

describe('PolicyEngine: decision cache', () => {
  it('serves repeated requests from the cache until invalidated or the rules change', () => {
    const engine = engineWith(DEFAULT_RULES);
    expect(engine.explain(useModel(alice, 'x')).passes[0]!.cached).toBe(false);
    expect(engine.explain(useModel(alice, 'x')).passes[0]!.cached).toBe(true);
    engine.invalidate();
    expect(engine.explain(useModel(alice, 'x')).passes[0]!.cached).toBe(false);
    expect(engine.setRules([...DEFAULT_RULES, rule('no-x', 'forbid (principal, action, resource == Model::"x");')])).toEqual({ ok: true });
    expect(engine.explain(useModel(alice, 'x'))).toMatchObject({ decision: 'deny', rules: ['no-x'], passes: [{ cached: false }] });
  });

  it('a change of membership is a different request, never a stale answer', () => {
    const engine = engineWith([rule('lab-x', 'permit (principal in Group::"lab", action == Action::"model.use", resource == Model::"x");')]);
    expect(engine.authorize(useModel(alice, 'x')).decision).toBe('allow');
    expect(engine.authorize(useModel({ ...alice, groups: [] }, 'x')).decision).toBe('deny');
    expect(engine.authorize(useModel({ ...alice, groups: ['lab'] }, 'x')).decision).toBe('allow');
  });

  it('never caches a decision a rule on the time can change', () => {
    let now = new Date('2026-12-05T10:00:00Z');
    const engine = engineWith([...DEFAULT_RULES, rule('office-hours', 'forbid (principal, action == Action::"model.use", resource) unless { context.time.toTime() >= duration("8h") && context.time.toTime() < duration("18h") };')], { now: () => now });
    expect(engine.explain(useModel(alice, 'x'))).toMatchObject({ decision: 'allow', passes: [{ cached: false }] });
    now = new Date('2026-12-05T20:00:00Z');
    expect(engine.explain(useModel(alice, 'x'))).toMatchObject({ decision: 'deny', rules: ['office-hours'], passes: [{ cached: false }] });
    expect(engine.authorize({ ...useModel(alice, 'x'), context: { time: new Date('2026-12-06T09:00:00Z') } }).decision).toBe('allow');
    // A request no time rule can apply to is still cached.
    engine.authorize(invoke(alice, alicesMail));
    expect(engine.explain(invoke(alice, alicesMail)).passes[0]!.cached).toBe(true);
  });

  it('keys on the context attributes the considered rules read', () => {
    const engine = engineWith([...DEFAULT_RULES, rule('big', 'forbid (principal, action == Action::"model.use", resource) when { context has requestSize && context.requestSize > 1000 };')]);
    const sized = (requestSize: number) => engine.explain({ ...useModel(alice, 'x'), context: { requestSize } });
    expect(sized(10)).toMatchObject({ decision: 'allow', passes: [{ cached: false }] });
    expect(sized(10)).toMatchObject({ decision: 'allow', passes: [{ cached: true }] });
    expect(sized(5000)).toMatchObject({ decision: 'deny', rules: ['big'], passes: [{ cached: false }] });
    expect(sized(5000)).toMatchObject({ decision: 'deny', passes: [{ cached: true }] });
  });

  it('keeps 64-bit literals exact (JSON numbers would round 2^53 + 1 down to 2^53)', () => {
    const engine = engineWith([rule('below', 'permit (principal, action == Action::"model.use", resource) when { context has requestSize && context.requestSize < 9007199254740993 };')]);
    expect(engine.authorize({ ...useModel(alice, 'x'), context: { requestSize: 2 ** 53 } })).toEqual({ decision: 'allow', rules: ['below'] });
  });

  it('works without a cache', () => {
    const engine = engineWith(DEFAULT_RULES, { cacheSize: 0 });
    engine.authorize(useModel(alice, 'x'));
    expect(engine.explain(useModel(alice, 'x')).passes[0]!.cached).toBe(false);
  });

  it('decides task and project conditions from the request context', () => {
    const engine = engineWith([rule('p1-tasks', 'permit (principal, action == Action::"model.use", resource) when { context has task && context.task in Project::"p-1" };')]);
    const withTask = (task: string, project?: string) => engine.authorize({ ...useModel(alice, 'x'), context: project === undefined ? { task } : { task, project } });
    expect(withTask('t-1', 'p-1').decision).toBe('allow');
    expect(withTask('t-1', 'p-2').decision).toBe('deny');
    expect(withTask('t-1').decision).toBe('deny');
  });
});

describe('PolicyEngine: tools of the MCP server', () => {
  const callTool = (user: UserSubject, name: string, readOnly: boolean, agent?: { id: string; role: string }): PolicyRequest => ({
    subject: { user, ...(agent ? { agent } : {}) },
    action: 'tool.call',
    resource: { type: 'Tool', name, readOnly },
  });

  it('lets every user call every tool by default, and an agent only what its role allows', () => {
    const engine = engineWith(DEFAULT_RULES);
    expect(engine.authorize(callTool(bob, 'task.create', false))).toEqual({ decision: 'allow', rules: ['default-tool-call'] });
    expect(engine.authorize(callTool(bob, 'task.get', true, { id: 'a-1', role: 'worker' }))).toEqual({ decision: 'allow', rules: ['default-tool-call', 'default-agent-worker'] });
    expect(engine.authorize(callTool(bob, 'task.create', false, { id: 'a-1', role: 'worker' })).decision).toBe('deny');
    expect(engine.authorize(callTool(bob, 'task.create', false, { id: 'a-2', role: 'project_manager' })).decision).toBe('allow');
    expect(engine.authorize(callTool(bob, 'task.list', true, { id: 'a-3', role: 'project_analyst' })).decision).toBe('allow');
    expect(engine.authorize(callTool(bob, 'task.cancel', false, { id: 'a-3', role: 'project_analyst' })).decision).toBe('deny');
    // A role no rule names gets nothing.
    expect(engine.authorize(callTool(bob, 'task.get', true, { id: 'a-4', role: 'admin' })).decision).toBe('deny');
  });

  it('restricts one tool by name to a group, and lets an agent role read through namespace and readOnly', () => {
    const engine = engineWith([
      ...DEFAULT_RULES,
      rule('invoke-lab-only', 'forbid (principal, action == Action::"tool.call", resource == Tool::"connector.op.invoke") unless { principal in Group::"lab" };'),
      rule('workers-read-tasks', 'permit (principal is Agent in Role::"worker", action == Action::"tool.call", resource is Tool) when { resource.readOnly && resource.namespace == "task" };'),
    ]);
    expect(engine.authorize(callTool(bob, 'connector.op.invoke', false))).toEqual({ decision: 'deny', rules: ['invoke-lab-only'] });
    expect(engine.authorize(callTool(alice, 'connector.op.invoke', false)).decision).toBe('allow');
    expect(engine.authorize(callTool(bob, 'task.get', true, { id: 'a-1', role: 'worker' })).decision).toBe('allow');
    expect(engine.authorize(callTool(bob, 'task.create', false, { id: 'a-1', role: 'worker' })).decision).toBe('deny');
    expect(engine.authorize(callTool(bob, 'node.list', true, { id: 'a-1', role: 'worker' })).decision).toBe('deny');
  });
});
