/**
 * The one access-control decision point: default deny, any matching forbid beats any permit,
 * and every error denies. Rules are Cedar policies (a maintained engine with exactly these
 * semantics, which also names the policies that decided, for audit).
 *
 * Cedar's cost grows with the policy set, so each decision evaluates only the rules whose scope
 * can match (scope-index.ts) as a small preparsed set, and decisions are cached until the rules
 * change or `invalidate()` is called. A decision is cached only on the request parts the
 * considered rules can read: never when one of them reads `context.time` (or the whole context).
 *
 * An agent acting for a user gets the intersection of both: the request is decided once with the
 * user as principal and once with the agent (in its role, with `principal.user`), and allowed
 * only if both allow. Rules for agents therefore say what an agent role may do; they can never
 * give an agent more than its user has.
 */
import { cedar } from './cedar';
import type { AuthorizationAnswer, CedarValueJson, DetailedError, Policy, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { LRUCache } from 'lru-cache';
import { contextEntities, contextValues, passesOf, uidKey, type Pass, type PolicyRequest } from './request';
import { ScopeIndex, indexedRule, type IndexedRule, type ScopeQuery } from './scope-index';
import { POLICY_SCHEMA, isPolicyAction } from './schema';

export interface PolicyRule {
  id: string;
  /** One Cedar policy (`permit (…) when {…};` or `forbid …`). */
  text: string;
  enabled: boolean;
}

export type Validation = { ok: true } | { ok: false; problems: string[] };

export interface PolicyDecision {
  decision: 'allow' | 'deny';
  /** Ids of the rules that decided: the permits that allowed, or the forbids (or failing rules) that denied. */
  rules: string[];
  /** Why, when no rule decided (default deny) or something failed. */
  reason?: string;
}

export interface PassExplanation extends PolicyDecision {
  who: 'user' | 'agent';
  /** Rules whose scope matched, so Cedar evaluated them. */
  considered: string[];
  cached: boolean;
}

export interface PolicyExplanation extends PolicyDecision {
  considered: string[];
  passes: PassExplanation[];
}

export interface PolicyEngineOptions {
  /** Evaluate only the rules whose scope matches (default). Off: the whole set, every time. */
  index?: boolean;
  /** Decisions kept (per principal pass); 0 turns the cache off. */
  cacheSize?: number;
  /** Distinct candidate sets kept preparsed inside Cedar. */
  preparedSets?: number;
  now?: () => Date;
}

interface Loaded {
  rules: IndexedRule[];
  texts: Map<string, string>;
  index: ScopeIndex;
  /** Set when a rule could not be loaded: every decision then denies, naming it. */
  broken?: string;
}

/** What parsing and validating one rule text gave. */
interface Checked {
  json?: PolicyJson;
  /** Set when the text does not parse. */
  error?: string;
  /** Schema validation problems. */
  problems: string[];
}

interface PassOutcome {
  decision: 'allow' | 'deny';
  rules: string[];
  reason?: string;
  considered: string[];
  cached: boolean;
}

const NO_RULE = 'no rule allows this (default deny)';

// Cedar keeps preparsed sets in module-wide storage: each engine names its own.
let engines = 0;

/** Cedar's message without its "for policy `x`, " prefix, with its hint when it has one. */
function problemText(e: DetailedError): string {
  const message = e.message.replace(/^for policy `[^`]*`, /, '');
  return e.help ? `${message} (${e.help})` : message;
}

export class PolicyEngine {
  private loaded: Loaded = { rules: [], texts: new Map(), index: new ScopeIndex([]) };
  private checked = new Map<string, Checked>();
  private readonly cache: LRUCache<string, PassOutcome> | null;
  // Candidate sets preparsed in Cedar, least recently used first; names are reused on eviction
  // so Cedar's storage stays bounded.
  private readonly prepared = new Map<string, string>();
  private readonly freeNames: string[] = [];
  private readonly useIndex: boolean;
  private readonly now: () => Date;
  private readonly tag: string;

  private constructor(options: PolicyEngineOptions) {
    this.useIndex = options.index ?? true;
    const cacheSize = options.cacheSize ?? 10_000;
    this.cache = cacheSize > 0 ? new LRUCache<string, PassOutcome>({ max: cacheSize }) : null;
    this.now = options.now ?? (() => new Date());
    this.tag = `cynode-policy-${++engines}`;
    const sets = Math.max(1, options.preparedSets ?? 256);
    for (let i = sets - 1; i >= 0; i--) this.freeNames.push(`${this.tag}-${i}`);
  }

  static create(options: PolicyEngineOptions = {}): PolicyEngine {
    return new PolicyEngine(options);
  }

  /**
   * Checks one rule before it is stored: it must parse, be exactly one static policy, and
   * type-check against the schema (an unknown action, entity type or attribute is a problem).
   */
  validate(text: string): Validation {
    try {
      const parts = cedar.policySetTextToParts(text);
      if (parts.type === 'failure') return { ok: false, problems: parts.errors.map(problemText) };
      if (parts.policy_templates.length > 0) return { ok: false, problems: ['a rule cannot be a template: use entities instead of ?principal or ?resource'] };
      if (parts.policies.length !== 1) return { ok: false, problems: [`a rule holds exactly one policy; found ${parts.policies.length}`] };
      const answer = cedar.validate({ schema: POLICY_SCHEMA, policies: { staticPolicies: { rule: text } } });
      if (answer.type === 'failure') return { ok: false, problems: answer.errors.map(problemText) };
      const problems = answer.validationErrors.map((v) => problemText(v.error));
      return problems.length > 0 ? { ok: false, problems } : { ok: true };
    } catch (err) {
      return { ok: false, problems: [`the rule could not be checked: ${(err as Error).message}`] };
    }
  }

  /**
   * Replaces the rule set (enabled rules only). A rule that does not parse leaves the engine
   * denying everything, naming it: skipping it could drop a forbid and open a door. Rules that
   * parse but fail schema validation (say, after an upgrade changed the schema) are loaded and
   * reported; should one fail while deciding, that decision denies. Only texts not seen in the
   * previous load are parsed and validated: 1,000 rules cost about 0.7 s the first time, and an
   * admin's edit should not stall every request for that long.
   */
  setRules(rules: readonly PolicyRule[]): Validation {
    const problems: string[] = [];
    const broken: string[] = [];
    const indexed: IndexedRule[] = [];
    const texts = new Map<string, string>();
    const enabled = rules.filter((r) => r.enabled);
    const checked = this.check(enabled.map((r) => r.text));
    for (const rule of enabled) {
      if (texts.has(rule.id)) {
        broken.push(`${rule.id}: the id is used twice`);
        continue;
      }
      const c = checked.get(rule.text)!;
      try {
        if (c.error !== undefined) throw new Error(c.error);
        indexed.push(indexedRule(rule.id, c.json!));
        texts.set(rule.id, rule.text);
        problems.push(...c.problems.map((p) => `${rule.id}: ${p}`));
      } catch (err) {
        broken.push(`${rule.id}: ${(err as Error).message}`);
      }
    }
    const loaded: Loaded = { rules: indexed, texts, index: new ScopeIndex(indexed) };
    if (broken.length > 0) loaded.broken = `rules could not be loaded, so everything is denied: ${broken.join('; ')}`;
    this.loaded = loaded;
    this.forgetPrepared();
    this.cache?.clear();
    if (!loaded.broken && !this.useIndex) {
      try {
        this.prepare(indexed.map((_, i) => i));
      } catch (err) {
        loaded.broken = `rules could not be prepared, so everything is denied: ${(err as Error).message}`;
      }
    }
    const all = [...broken, ...problems];
    return all.length > 0 ? { ok: false, problems: all } : { ok: true };
  }

  /** Parses and validates the texts not checked before; keeps the answers of this load only. */
  private check(texts: readonly string[]): Map<string, Checked> {
    const next = new Map<string, Checked>();
    const fresh: string[] = [];
    for (const text of texts) {
      if (next.has(text)) continue;
      const known = this.checked.get(text);
      if (known) next.set(text, known);
      else {
        fresh.push(text);
        next.set(text, { error: 'not checked', problems: [] });
      }
    }
    const parsed: string[] = [];
    for (const text of fresh) {
      try {
        const answer = cedar.policyToJson(text);
        if (answer.type === 'failure') next.set(text, { error: answer.errors.map(problemText).join('; '), problems: [] });
        else {
          next.set(text, { json: answer.json, problems: [] });
          parsed.push(text);
        }
      } catch (err) {
        next.set(text, { error: (err as Error).message, problems: [] });
      }
    }
    if (parsed.length > 0) {
      try {
        const answer = cedar.validate({ schema: POLICY_SCHEMA, policies: { staticPolicies: Object.fromEntries(parsed.map((t, i) => [`p${i}`, t])) } });
        if (answer.type === 'failure') throw new Error(answer.errors.map(problemText).join('; '));
        for (const v of answer.validationErrors) next.get(parsed[Number(v.policyId.slice(1))]!)!.problems.push(problemText(v.error));
      } catch (err) {
        for (const t of parsed) next.set(t, { error: `validation failed: ${(err as Error).message}`, problems: [] });
      }
    }
    this.checked = next;
    return next;
  }

  /** Forgets cached decisions: call when rules, group memberships, roles or owners change. */
  invalidate(): void {
    this.cache?.clear();
  }

  authorize(request: PolicyRequest): PolicyDecision {
    const { decision, rules, reason } = this.explain(request);
    return reason === undefined ? { decision, rules } : { decision, rules, reason };
  }

  /** The decision, with the rules each pass considered and whether it came from the cache. */
  explain(request: PolicyRequest): PolicyExplanation {
    try {
      if (!isPolicyAction(request.action)) return denied(`unknown action "${String(request.action)}"`);
      if (this.loaded.broken) return denied(this.loaded.broken);
      const passes = passesOf(request).map((p) => ({ who: p.who, ...this.decidePass(p, request) }));
      return combine(passes);
    } catch (err) {
      return denied(`policy engine error: ${(err as Error).message}`);
    }
  }

  private decidePass(pass: Pass, request: PolicyRequest): PassOutcome {
    const loaded = this.loaded;
    const positions = this.useIndex ? loaded.index.candidates(queryOf(pass)) : loaded.rules.map((_, i) => i);
    const considered = positions.map((i) => loaded.rules[i]!.id);

    // What of the context the considered rules read decides both the cache key and what Cedar gets.
    let wholeContext = false;
    let readsEntities = false;
    const attrs = new Set<string>();
    for (const i of positions) {
      const r = loaded.rules[i]!;
      if (r.context.all) wholeContext = true;
      for (const a of r.context.attrs) attrs.add(a);
      // Conditions may read any entity; with the index, Cedar mostly never sees the scope (see prepare).
      if (r.json.conditions.length > 0 || (r.scopeReadsHierarchy && !(this.useIndex && r.jsonExact))) readsEntities = true;
    }
    // The task entity's project comes from `context.project`.
    if (attrs.has('task')) attrs.add('project');
    const values = contextValues(request.context, this.now);
    const read = wholeContext ? Object.keys(values) : [...attrs].filter((a) => a in values).sort();

    const cacheable = this.cache !== null && !wholeContext && !attrs.has('time');
    const key = cacheable ? `${pass.identity}|${JSON.stringify(read.map((a) => values[a]))}|${read.join(',')}` : '';
    if (cacheable) {
      const hit = this.cache!.get(key);
      // Copies, so a caller changing its answer cannot change the cached one.
      if (hit) return { ...hit, rules: [...hit.rules], considered: [...hit.considered], cached: true };
    }
    if (positions.length === 0) return { decision: 'deny', rules: [], reason: NO_RULE, considered, cached: false };

    const context: Record<string, CedarValueJson> = {};
    for (const a of read) context[a] = values[a]!;
    const entities = !readsEntities ? [] : read.includes('task') ? [...pass.entities, ...contextEntities(request.context)] : pass.entities;
    const setId = this.prepare(this.useIndex ? positions : null);
    const answer: AuthorizationAnswer = cedar.statefulIsAuthorized({
      principal: pass.principal,
      action: pass.action,
      resource: pass.resource,
      context,
      entities,
      preparsedPolicySetId: setId,
    });
    if (answer.type === 'failure') {
      return { decision: 'deny', rules: [], reason: `policy engine error: ${answer.errors.map(problemText).join('; ')}`, considered, cached: false };
    }
    const { decision, diagnostics } = answer.response;
    if (diagnostics.errors.length > 0) {
      // Cedar skips a rule that fails while evaluating; a skipped forbid could let a permit
      // through, so any failure denies, naming the failing rules.
      // Sorted: Cedar reports them in no fixed order, and answers should not flicker.
      const errors = [...diagnostics.errors].sort((a, b) => (a.policyId < b.policyId ? -1 : a.policyId > b.policyId ? 1 : 0));
      const failing = [...new Set(errors.map((e) => e.policyId))];
      const detail = errors.map((e) => `${e.policyId}: ${problemText(e.error)}`).join('; ');
      return { decision: 'deny', rules: failing, reason: `a rule failed to evaluate, so this is denied: ${detail}`, considered, cached: false };
    }
    const outcome: PassOutcome =
      decision === 'allow' || diagnostics.reason.length > 0
        ? { decision, rules: [...diagnostics.reason].sort(), considered, cached: false }
        : { decision: 'deny', rules: [], reason: NO_RULE, considered, cached: false };
    if (cacheable) this.cache!.set(key, { ...outcome, rules: [...outcome.rules], considered: [...considered] });
    return outcome;
  }

  /**
   * The name of a Cedar policy set holding the given rules (all of them for `null`), preparsing
   * it the first time this exact set is needed. The same handful of rules come up again and
   * again (a user's groups, a model), so parsing once per distinct set keeps Cedar's work small.
   */
  private prepare(positions: number[] | null): string {
    const loaded = this.loaded;
    const list = positions ?? loaded.rules.map((_, i) => i);
    const setKey = positions === null ? '*' : list.join(',');
    const name = this.prepared.get(setKey);
    if (name !== undefined) {
      this.prepared.delete(setKey);
      this.prepared.set(setKey, name);
      return name;
    }
    let fresh = this.freeNames.pop();
    if (fresh === undefined) {
      const [oldestKey, oldestName] = this.prepared.entries().next().value as [string, string];
      this.prepared.delete(oldestKey);
      fresh = oldestName;
    }
    const staticPolicies: Record<string, Policy> = {};
    for (const i of list) {
      const rule = loaded.rules[i]!;
      // The index has already matched these rules' scopes exactly as Cedar would (the property
      // test in tests/unit/policy-index.test.ts holds it to that), so Cedar evaluates their
      // conditions under an open scope. A rule whose scope alone decides then needs no entities,
      // and building Cedar's entity store is most of a decision's cost. The whole set keeps its
      // scopes, since nothing matched them beforehand; so does a rule whose JSON form is not
      // exact (a 64-bit literal), since only its text says what it means.
      const open = positions !== null && rule.jsonExact;
      staticPolicies[rule.id] = open ? { ...rule.json, principal: { op: 'All' }, action: { op: 'All' }, resource: { op: 'All' } } : loaded.texts.get(rule.id)!;
    }
    const answer = cedar.preparsePolicySet(fresh, { staticPolicies });
    if (answer.type === 'failure') {
      this.freeNames.push(fresh);
      throw new Error(answer.errors.map(problemText).join('; '));
    }
    this.prepared.set(setKey, fresh);
    return fresh;
  }

  private forgetPrepared(): void {
    for (const name of this.prepared.values()) this.freeNames.push(name);
    this.prepared.clear();
  }
}

function queryOf(pass: Pass): ScopeQuery {
  return {
    principal: { key: uidKey(pass.principal.type, pass.principal.id), type: pass.principal.type, ancestors: pass.principalAncestors },
    // Actions have no groups yet, so an action is only `in` itself.
    action: { key: uidKey('Action', pass.action.id), type: 'Action', ancestors: new Set([uidKey('Action', pass.action.id)]) },
    resource: { key: uidKey(pass.resource.type, pass.resource.id), type: pass.resource.type, ancestors: pass.resourceAncestors },
  };
}

function denied(reason: string): PolicyExplanation {
  return { decision: 'deny', rules: [], reason, considered: [], passes: [] };
}

/** Allowed only if every pass allows; the deciding rules are those of the passes that decided. */
function combine(passes: PassExplanation[]): PolicyExplanation {
  const considered = [...new Set(passes.flatMap((p) => p.considered))];
  const denying = passes.filter((p) => p.decision === 'deny');
  const deciding = denying.length > 0 ? denying : passes;
  const rules = [...new Set(deciding.flatMap((p) => p.rules))];
  const result: PolicyExplanation = { decision: denying.length > 0 ? 'deny' : 'allow', rules, considered, passes };
  const reasons = denying.filter((p) => p.reason !== undefined).map((p) => (passes.length > 1 ? `${p.who}: ${p.reason}` : p.reason!));
  if (reasons.length > 0) result.reason = reasons.join('; ');
  return result;
}
