import { useState } from 'react';
import { api, enc } from '../../api/client';
import type { PolicyRule } from '../../api/types';
import { useUi } from '../../store/ui';
import { ActionButton, Empty, Loadable, StatusBadge, Time, useLoad } from '../common';
import { RuleEditor } from './RuleEditor';

/** Every access rule (default ones too) with create, edit, enable/disable and delete. */
export function RulesList() {
  const rules = useLoad((signal) => api.get<{ rules: PolicyRule[] }>('/v1/policy/rules?limit=200', signal).then((r) => r.rules), []);
  const [editing, setEditing] = useState<PolicyRule | 'new' | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const toast = useUi((s) => s.toast);
  const saved = (r: PolicyRule) => {
    toast(`Rule “${r.name}” saved`);
    setEditing(null);
    rules.reload();
  };
  return (
    <>
      <p className="muted">
        Default deny: what no enabled rule permits is refused, and any matching <code>forbid</code> beats every <code>permit</code>. Changes apply at once and are in the audit trail.
      </p>
      {editing ? (
        <RuleEditor key={editing === 'new' ? 'new' : editing.id} rule={editing === 'new' ? undefined : editing} onSaved={saved} onCancel={() => setEditing(null)} />
      ) : (
        <div className="row">
          <button type="button" className="btn primary" onClick={() => setEditing('new')}>
            New rule
          </button>
        </div>
      )}
      <Loadable state={rules} label="Loading rules">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No rules">Nothing is allowed: every model and connector call is denied.</Empty>
          ) : (
            <ul className="list rules" aria-label="Rules">
              {list.map((r) => (
                <li key={r.id} className="card">
                  <div className="row wrap">
                    <button type="button" className="btn ghost left grow" onClick={() => setOpen(open === r.id ? null : r.id)} aria-expanded={open === r.id}>
                      <strong>{r.name}</strong>
                    </button>
                    <StatusBadge status={r.enabled ? 'active' : 'disabled'} />
                    <span className="muted small hide-narrow">
                      changed <Time iso={r.updated_at} />
                    </span>
                  </div>
                  <div className="muted small rule-meta">
                    <code>{r.id}</code>
                    {r.is_default && ' · shipped with CyNode'} · v{r.version}
                  </div>
                  {r.description && <div className="small">{r.description}</div>}
                  {open === r.id && <pre className="rule-text small">{r.text}</pre>}
                  <div className="row wrap actions">
                    <button type="button" className="btn small ghost" onClick={() => setEditing(r)}>
                      Edit
                    </button>
                    <ActionButton className="btn small ghost" onAction={() => api.patch(`/v1/policy/rules/${enc(r.id)}`, { enabled: !r.enabled, version: r.version }).then(rules.reload)}>
                      {r.enabled ? 'Disable' : 'Enable'}
                    </ActionButton>
                    <ActionButton className="btn small danger ghost" confirm={`Delete the rule “${r.name}”? What no remaining rule allows is denied.`} onAction={() => api.del(`/v1/policy/rules/${enc(r.id)}`).then(rules.reload)}>
                      Delete
                    </ActionButton>
                  </div>
                </li>
              ))}
            </ul>
          )
        }
      </Loadable>
    </>
  );
}
