import { useEffect, useState } from 'react';
import { ApiError, api, enc, request } from '../../api/client';
import type { PolicyRule, RuleCheck } from '../../api/types';
import { ErrorNote, useFormSubmit } from '../common';

/** How long typing pauses before the text is checked: one request per pause, not per key. */
const VALIDATE_DELAY_MS = 400;

type Check = { state: 'idle' | 'checking' } | { state: 'done'; result: RuleCheck } | { state: 'failed'; error: string };

/**
 * Checks the rule's text as the admin types (`POST /v1/policy/rules/validate`, debounced, the
 * previous check aborted), so a rule that does not parse or names an unknown action shows its
 * problem before it is saved.
 */
function useValidation(text: string): Check {
  const [check, setCheck] = useState<Check>({ state: 'idle' });
  useEffect(() => {
    if (!text.trim()) {
      setCheck({ state: 'idle' });
      return;
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      setCheck({ state: 'checking' });
      request<RuleCheck>('/v1/policy/rules/validate', { method: 'POST', body: { text }, signal: ctl.signal })
        .then((result) => setCheck({ state: 'done', result }))
        .catch((err: unknown) => {
          if (!ctl.signal.aborted) setCheck({ state: 'failed', error: err instanceof Error ? err.message : String(err) });
        });
    }, VALIDATE_DELAY_MS);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [text]);
  return check;
}

/** The problems a refused save named (`problems` in the 400 problem document), else its message. */
function problemsOf(err: unknown): string[] | null {
  if (!(err instanceof ApiError)) return null;
  const p = err.problem as { problems?: unknown } | undefined;
  return Array.isArray(p?.problems) ? p.problems.map(String) : null;
}

export const RULE_TEMPLATE = 'permit (\n  principal,\n  action == Action::"model.use",\n  resource\n);';

/** Create a rule (no `rule`) or edit one (with its version, so a concurrent change is a 409). */
export function RuleEditor({ rule, onSaved, onCancel }: { rule?: PolicyRule; onSaved(r: PolicyRule): void; onCancel(): void }) {
  const [name, setName] = useState(rule?.name ?? '');
  const [description, setDescription] = useState(rule?.description ?? '');
  const [text, setText] = useState(rule?.text ?? RULE_TEMPLATE);
  const [enabled, setEnabled] = useState(rule?.enabled ?? true);
  const [refused, setRefused] = useState<string[] | null>(null);
  const check = useValidation(text);
  const { error, onSubmit } = useFormSubmit(async () => {
    setRefused(null);
    const body = { name: name.trim(), description, text, enabled };
    try {
      onSaved(rule ? await api.patch<PolicyRule>(`/v1/policy/rules/${enc(rule.id)}`, { ...body, version: rule.version }) : await api.post<PolicyRule>('/v1/policy/rules', body));
    } catch (err) {
      setRefused(problemsOf(err));
      throw err;
    }
  });
  const problems = refused ?? (check.state === 'done' && !check.result.valid ? check.result.problems : null);
  return (
    <form className="card form" onSubmit={onSubmit} aria-label={rule ? `Edit rule ${rule.name}` : 'New rule'}>
      <h2>{rule ? `Edit “${rule.name}”` : 'New rule'}</h2>
      <div className="row wrap">
        <label className="grow">
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        </label>
        <label className="check">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
          Enabled
        </label>
      </div>
      <label>
        Description
        <input value={description} onChange={(e) => setDescription(e.target.value)} maxLength={2000} />
      </label>
      <label>
        Rule (one Cedar policy)
        <textarea className="mono rule-text" rows={8} value={text} onChange={(e) => (setText(e.target.value), setRefused(null))} spellCheck={false} aria-invalid={problems ? true : undefined} />
      </label>
      <div className="rule-check" aria-live="polite" data-testid="rule-check">
        {check.state === 'checking' && <span className="muted small">Checking…</span>}
        {check.state === 'done' && check.result.valid && !refused && <span className="badge status-allow">valid</span>}
        {check.state === 'failed' && <span className="muted small">Could not check: {check.error}</span>}
        {problems && (
          <ul className="problems" aria-label="Rule problems">
            {problems.map((p, i) => (
              <li key={i}>{p}</li>
            ))}
          </ul>
        )}
      </div>
      {error && !refused && <ErrorNote error={error} />}
      <div className="row">
        <button type="submit" className="btn primary">
          {rule ? 'Save' : 'Create rule'}
        </button>
        <button type="button" className="btn ghost" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
