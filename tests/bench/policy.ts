/**
 * Policy decisions with 1,000 rules loaded, of which a handful apply to each request: decisions
 * per second and latency (p50/p95/p99) for the whole set evaluated every time, for the scope
 * index on fresh requests (nothing cached), and for repeated requests answered by the cache.
 * Targets: >= 20,000 decisions/s and p99 < 1 ms.
 */
import { DEFAULT_RULES } from '../../server/policy/default-rules';
import { PolicyEngine, type PolicyRule } from '../../server/policy/engine';
import type { PolicyRequest } from '../../server/policy/request';
import { summarize } from './stats';

const RULES = 1_000;
const FRESH = Number(process.env.BENCH_POLICY_DECISIONS || 20_000);
const WHOLE = Number(process.env.BENCH_POLICY_WHOLE || 400);
const GROUPS = 10;

/** 1,000 rules spread over many groups, models, connectors and types: few match one request. */
function rules(): PolicyRule[] {
  const out: PolicyRule[] = [...DEFAULT_RULES];
  for (let i = 0; out.length < RULES; i++) {
    const kind = i % 4;
    const text =
      kind === 0
        ? `permit (principal in Group::"g${i % 50}", action == Action::"model.use", resource == Model::"m${(i >> 2) % 12}");`
        : kind === 1
          ? `permit (principal in Group::"g${i % 200}", action == Action::"connector.invoke", resource in Connector::"c${i}") when { resource.name == "list" };`
          : kind === 2
            ? `forbid (principal == User::"blocked-${i}", action, resource in ConnectorType::"t${i % 50}");`
            : `permit (principal is Agent in Role::"agent-${i % 100}", action == Action::"connector.invoke", resource in ConnectorType::"t${i % 50}");`;
    out.push({ id: `bench-${i}`, text, enabled: true });
  }
  return out;
}

let serial = 0;
/**
 * A request no cache has seen: a new user each time, in two of ten groups, asking for one of
 * twelve models. Most such pairs have a group rule on that model, so a handful of rules (the
 * default, group rules) apply, and their `in` makes Cedar need the user's entity.
 */
function freshRequest(): PolicyRequest {
  const n = serial++;
  const groups = [`g${2 * (n % GROUPS)}`, `g${2 * ((n * 7 + 3) % GROUPS)}`];
  return { subject: { user: { id: `u-${n}`, handle: `user${n}`, roles: ['user'], groups } }, action: 'model.use', resource: { type: 'Model', id: `m${n % 12}` } };
}

/** A fresh operation on one of the user's own instances: the default rules' conditions read entities. */
function freshInvocation(): PolicyRequest {
  const n = serial++;
  const user = { id: `u-${n}`, handle: `user${n}`, roles: ['user'], groups: [`g${2 * (n % GROUPS)}`] };
  return { subject: { user }, action: 'connector.invoke', resource: { type: 'Operation', name: 'list', connector: { id: `c${(n % 250) * 4 + 1}`, type: `t${n % 50}`, ownerUser: user.id } } };
}

interface Row {
  name: string;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
}

function measure(name: string, engine: PolicyEngine, requests: PolicyRequest[]): Row {
  const samples: number[] = [];
  const started = performance.now();
  for (const r of requests) {
    const t = performance.now();
    engine.authorize(r);
    samples.push(performance.now() - t);
  }
  const elapsed = performance.now() - started;
  const s = summarize(samples);
  return { name, perSecond: (requests.length / elapsed) * 1000, p50: s.p50, p95: s.p95, p99: s.p99 };
}

const us = (msValue: number) => `${(msValue * 1000).toFixed(0).padStart(7)} µs`;

export async function policyBench(): Promise<void> {
  const set = rules();
  const whole = PolicyEngine.create({ index: false, cacheSize: 0 });
  const indexed = PolicyEngine.create();
  const loadStarted = performance.now();
  const loaded = indexed.setRules(set);
  const loadMs = performance.now() - loadStarted;
  if (!loaded.ok) throw new Error(`bench rules do not load: ${loaded.problems.join('; ')}`);
  // An admin's edit: one rule changes, the other 999 were checked before.
  const edited = set.map((r, i) => (i === set.length - 1 ? { ...r, text: r.text.replace('permit', 'forbid') } : r));
  const reloadStarted = performance.now();
  indexed.setRules(edited);
  const reloadMs = performance.now() - reloadStarted;
  indexed.setRules(set);
  whole.setRules(set);
  const considered = Array.from({ length: 1000 }, () => indexed.explain(freshRequest()).considered.length);
  const mean = considered.reduce((a, b) => a + b, 0) / considered.length;
  console.log(`${set.length} rules loaded in ${loadMs.toFixed(0)} ms, reloaded after one edit in ${reloadMs.toFixed(0)} ms; a request's scope matches ${Math.min(...considered)} to ${Math.max(...considered)} of them (mean ${mean.toFixed(1)})\n`);

  // Warm both engines (JIT, preparsed candidate sets) before timing.
  for (let i = 0; i < 200; i++) indexed.authorize(freshRequest());
  for (let i = 0; i < 20; i++) whole.authorize(freshRequest());

  const wholeRequests = Array.from({ length: WHOLE }, freshRequest);
  const freshRequests = Array.from({ length: FRESH }, freshRequest);
  const invocations = Array.from({ length: FRESH }, freshInvocation);
  for (let i = 0; i < 200; i++) indexed.authorize(freshInvocation());
  // The index must decide exactly as the whole set does.
  for (const r of [...wholeRequests, ...invocations.slice(0, WHOLE)]) {
    const a = JSON.stringify(whole.authorize(r));
    const b = JSON.stringify(indexed.authorize(r));
    if (a !== b) throw new Error(`index and whole set disagree on ${JSON.stringify(r)}: ${a} vs ${b}`);
  }
  indexed.invalidate();

  const repeated = Array.from({ length: 500 }, freshRequest);
  for (const r of repeated) indexed.authorize(r);
  const cachedRequests = Array.from({ length: FRESH }, (_, i) => repeated[i % repeated.length]!);

  const rows = [
    measure('whole set, every decision evaluated', whole, wholeRequests),
    measure('scope index, fresh requests (no cache hit)', indexed, freshRequests),
    measure('  same, connector.invoke (reads entities)', indexed, invocations),
    measure('scope index + cache, repeated requests', indexed, cachedRequests),
  ];
  const base = rows[0]!;
  console.log(`${'mode'.padEnd(44)} ${'decisions/s'.padStart(12)} ${'p50'.padStart(10)} ${'p95'.padStart(10)} ${'p99'.padStart(10)}  vs whole set`);
  for (const r of rows) {
    const ratio = r === base ? '' : `${(r.perSecond / base.perSecond).toFixed(0)}× faster`;
    console.log(`${r.name.padEnd(44)} ${r.perSecond.toFixed(0).padStart(12)} ${us(r.p50)} ${us(r.p95)} ${us(r.p99)}  ${ratio}`);
  }
  const [, fresh, , cached] = rows as [Row, Row, Row, Row];
  console.log(`\ntarget >= 20,000/s and p99 < 1 ms: fresh ${fresh.perSecond >= 20_000 && fresh.p99 < 1 ? 'met' : 'NOT met'}, cached ${cached.perSecond >= 20_000 && cached.p99 < 1 ? 'met' : 'NOT met'}`);
}
