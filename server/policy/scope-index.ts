/**
 * Finds the rules that can apply to a request from their scope heads alone, so Cedar evaluates a
 * handful of policies instead of all of them (its cost grows with the set: about 2 µs a policy
 * per decision, 2.5 ms with 1,000 rules).
 *
 * This is sound because a Cedar policy is `scope && when && !unless` evaluated left to right:
 * a policy whose scope does not match the request is false without its conditions being
 * evaluated, so it can neither decide nor raise an error. Leaving such policies out therefore
 * gives the same decision, the same determining policies and the same errors. The heads are
 * matched exactly as Cedar does, against the same hierarchy the engine hands Cedar.
 *
 * Exactness matters both ways: a forbid left out would let a request through, and the engine
 * hands Cedar the candidates with their scopes opened (it trusts this match), so a rule let in
 * wrongly would apply. tests/unit/policy-index.test.ts compares it with Cedar on the whole set.
 */
import type { ActionConstraint, Clause, EntityUidJson, PolicyJson, PrincipalConstraint, ResourceConstraint } from '@cedar-policy/cedar-wasm/nodejs';
import { uidKey } from './request';

/** A scope head, reduced to what matching needs. `in` holds every entity of `in [A, B]`. */
export type Head = { kind: 'all' } | { kind: 'eq'; key: string } | { kind: 'in'; keys: string[] } | { kind: 'is'; type: string; in?: string };

/** Which context attributes a rule reads; `all` when it uses `context` as a whole. */
export interface ContextUse {
  all: boolean;
  attrs: ReadonlySet<string>;
}

export interface IndexedRule {
  id: string;
  principal: Head;
  action: Head;
  resource: Head;
  context: ContextUse;
  /** The parsed policy, from which the engine builds the form Cedar evaluates. */
  json: PolicyJson;
  /** Whether its scope reads the entity hierarchy (`in`); `==`, `is` and no constraint do not. */
  scopeReadsHierarchy: boolean;
  /**
   * Whether `json` says exactly what the text says. Cedar's integers are 64-bit; JavaScript
   * numbers hold 53 bits, so a literal beyond that changes on its way through JSON.
   */
  jsonExact: boolean;
}

function numbersExact(node: unknown): boolean {
  if (typeof node === 'number') return Number.isSafeInteger(node);
  if (node === null || typeof node !== 'object') return true;
  return Object.values(node as Record<string, unknown>).every(numbersExact);
}

/** One side of a request as the index sees it: the entity, its type and all it is `in`. */
export interface Side {
  key: string;
  type: string;
  /** Includes `key` itself: `E in E` holds in Cedar. */
  ancestors: ReadonlySet<string>;
}

export interface ScopeQuery {
  principal: Side;
  action: Side;
  resource: Side;
}

function entityKey(e: EntityUidJson): string {
  const u = '__entity' in e ? e.__entity : e;
  return uidKey(u.type, u.id);
}

function headOf(c: PrincipalConstraint | ResourceConstraint | ActionConstraint, where: string): Head {
  switch (c.op) {
    case 'All':
      return { kind: 'all' };
    case '==':
      if (!('entity' in c)) throw new Error(`template slots are not supported (${where})`);
      return { kind: 'eq', key: entityKey(c.entity) };
    case 'in':
      if ('entities' in c) return { kind: 'in', keys: c.entities.map(entityKey) };
      if (!('entity' in c)) throw new Error(`template slots are not supported (${where})`);
      return { kind: 'in', keys: [entityKey(c.entity)] };
    case 'is': {
      if (c.in && !('entity' in c.in)) throw new Error(`template slots are not supported (${where})`);
      const inKey = c.in && 'entity' in c.in ? entityKey(c.in.entity) : undefined;
      return inKey === undefined ? { kind: 'is', type: c.entity_type } : { kind: 'is', type: c.entity_type, in: inKey };
    }
    default:
      throw new Error(`unknown scope constraint in ${where}`);
  }
}

/**
 * Walks a condition for uses of `context`. `context.x` and `context has x` read one attribute;
 * any other use (`context == {...}`, `context` passed whole) counts as reading all of it. Decisions
 * may be cached only on what the candidate rules read, so this errs towards "all".
 */
function collectContextUse(node: unknown, use: { all: boolean; attrs: Set<string> }): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) collectContextUse(n, use);
    return;
  }
  const obj = node as Record<string, unknown>;
  for (const [op, arg] of Object.entries(obj)) {
    if (op === 'Var' && arg === 'context') {
      use.all = true;
      continue;
    }
    if (op === 'Value') continue; // literals never read the request
    if ((op === '.' || op === 'has') && arg && typeof arg === 'object') {
      const a = arg as { left?: unknown; attr?: unknown };
      const left = a.left as { Var?: unknown } | undefined;
      if (left && left.Var === 'context') {
        const attr = Array.isArray(a.attr) ? a.attr[0] : a.attr;
        if (typeof attr === 'string') use.attrs.add(attr);
        else use.all = true;
        continue;
      }
    }
    collectContextUse(arg, use);
  }
}

/** The index's view of one parsed rule. */
export function indexedRule(id: string, json: PolicyJson): IndexedRule {
  const use = { all: false, attrs: new Set<string>() };
  for (const clause of json.conditions as Clause[]) collectContextUse(clause.body, use);
  const principal = headOf(json.principal, `principal of ${id}`);
  const resource = headOf(json.resource, `resource of ${id}`);
  const hierarchy = (h: Head) => h.kind === 'in' || (h.kind === 'is' && h.in !== undefined);
  return {
    id,
    principal,
    action: headOf(json.action, `action of ${id}`),
    resource,
    context: use,
    json,
    scopeReadsHierarchy: hierarchy(principal) || hierarchy(resource),
    jsonExact: numbersExact(json),
  };
}

/** Whether a head matches one side of a request, as Cedar's scope check would. */
export function headMatches(h: Head, side: Side): boolean {
  switch (h.kind) {
    case 'all':
      return true;
    case 'eq':
      return h.key === side.key;
    case 'in':
      return h.keys.some((k) => side.ancestors.has(k));
    case 'is':
      return h.type === side.type && (h.in === undefined || side.ancestors.has(h.in));
  }
}

/** Buckets of rule positions for one scope variable. */
class Dimension {
  private readonly eq = new Map<string, number[]>();
  private readonly within = new Map<string, number[]>();
  private readonly is = new Map<string, number[]>();
  private readonly all: number[] = [];

  add(h: Head, at: number): void {
    const put = (m: Map<string, number[]>, k: string) => {
      const list = m.get(k);
      if (list) list.push(at);
      else m.set(k, [at]);
    };
    if (h.kind === 'all') this.all.push(at);
    else if (h.kind === 'eq') put(this.eq, h.key);
    else if (h.kind === 'in') for (const k of h.keys) put(this.within, k);
    // `is T in E` goes under T: every rule in the bucket is then checked in full anyway.
    else put(this.is, h.type);
  }

  /** Lists that together hold every rule whose head can match this side (maybe more). */
  lists(side: Side): number[][] {
    const out: number[][] = [this.all];
    const eq = this.eq.get(side.key);
    if (eq) out.push(eq);
    const is = this.is.get(side.type);
    if (is) out.push(is);
    for (const a of side.ancestors) {
      const w = this.within.get(a);
      if (w) out.push(w);
    }
    return out;
  }
}

const total = (lists: number[][]) => lists.reduce((n, l) => n + l.length, 0);

export class ScopeIndex {
  private readonly principal = new Dimension();
  private readonly action = new Dimension();
  private readonly resource = new Dimension();
  // Marks rules already emitted in this query; a stamp per query avoids clearing a set.
  private readonly seen: Uint32Array;
  private stamp = 0;

  constructor(readonly rules: readonly IndexedRule[]) {
    rules.forEach((r, i) => {
      this.principal.add(r.principal, i);
      this.action.add(r.action, i);
      this.resource.add(r.resource, i);
    });
    this.seen = new Uint32Array(rules.length);
  }

  /**
   * Positions (ascending) of the rules whose three scope heads all match. Candidates come from
   * whichever variable narrows most, then each is checked on all three heads.
   */
  candidates(q: ScopeQuery): number[] {
    const options = [this.principal.lists(q.principal), this.action.lists(q.action), this.resource.lists(q.resource)];
    let best = options[0]!;
    for (const o of options) if (total(o) < total(best)) best = o;
    this.stamp = this.stamp === 0xffffffff ? 1 : this.stamp + 1;
    if (this.stamp === 1) this.seen.fill(0);
    const out: number[] = [];
    for (const list of best) {
      for (const i of list) {
        if (this.seen[i] === this.stamp) continue;
        this.seen[i] = this.stamp;
        const r = this.rules[i]!;
        if (headMatches(r.principal, q.principal) && headMatches(r.action, q.action) && headMatches(r.resource, q.resource)) out.push(i);
      }
    }
    return out.sort((a, b) => a - b);
  }
}
