import { describe, expect, it } from 'vitest';
import { AGENT_ROLES, isAgentRole } from '../../server/agents/roles';
import { claimsAgentToken } from '../../server/agents/tokens';
import { DEFAULT_RULES } from '../../server/policy/default-rules';
import { PolicyEngine } from '../../server/policy/engine';

/* The one list of agent roles, and the shipped rules that give each its allowlist. */

const rolesNamed = (text: string) => [...text.matchAll(/principal is Agent in Role::"([^"]+)"/g)].map((m) => m[1]);

describe('agent roles', () => {
  it('are the three roles of the spec, and nothing else passes as one', () => {
    expect(Object.keys(AGENT_ROLES).sort()).toEqual(['project_analyst', 'project_manager', 'worker']);
    expect(isAgentRole('worker')).toBe(true);
    expect(isAgentRole('admin')).toBe(false);
    expect(isAgentRole('toString')).toBe(false);
  });

  it('each has exactly one shipped tool rule, every shipped agent rule names a known role, and each validates', () => {
    const agentRules = DEFAULT_RULES.filter((r) => rolesNamed(r.text).length > 0);
    const toolRules = agentRules.filter((r) => r.text.includes('Action::"tool.call"'));
    expect(toolRules.flatMap((r) => rolesNamed(r.text)).sort()).toEqual(Object.keys(AGENT_ROLES).sort());
    const engine = PolicyEngine.create();
    for (const r of agentRules) {
      for (const role of rolesNamed(r.text)) expect(isAgentRole(role!), r.id).toBe(true);
      expect(engine.validate(r.text), r.id).toMatchObject({ ok: true });
    }
  });
});

describe('claimsAgentToken', () => {
  const jwt = (payload: object) => `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;
  it('tells an agent token from other bearer credentials by its claims alone', () => {
    expect(claimsAgentToken(`Bearer ${jwt({ token_type: 'agent' })}`)).toBe(true);
    expect(claimsAgentToken(`Bearer ${jwt({ aud: 'cynode-mcp' })}`)).toBe(true);
    expect(claimsAgentToken(`Bearer ${jwt({ token_type: 'access', sid: 'x' })}`)).toBe(false);
    expect(claimsAgentToken('Bearer cyk_abcdef')).toBe(false);
    expect(claimsAgentToken('Bearer a.b.c')).toBe(false);
    expect(claimsAgentToken(undefined)).toBe(false);
  });
});
