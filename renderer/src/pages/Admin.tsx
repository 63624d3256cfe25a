import { useState } from 'react';
import { api, enc, qs } from '../api/client';
import type { ApiKey, AuditEvent, Group, GroupMember, User } from '../api/types';
import { ActionButton, CopyButton, Empty, ErrorNote, Loadable, PageHeader, StatusBadge, Time, useFormSubmit, useLoad } from '../components/common';
import { Link } from '../components/Layout';
import { canOperate, useSession } from '../store/session';
import { useUi } from '../store/ui';

type Tab = 'users' | 'groups' | 'keys' | 'audit';

export function AdminPage({ tab }: { tab?: string }) {
  const me = useSession((s) => s.me);
  const admin = me?.roles.includes('admin') ?? false;
  const tabs: Array<{ id: Tab; label: string; show: boolean }> = [
    { id: 'users', label: 'Users', show: admin },
    { id: 'groups', label: 'Groups', show: admin },
    { id: 'keys', label: 'API keys', show: true },
    { id: 'audit', label: 'Audit log', show: canOperate(me) },
  ];
  const visible = tabs.filter((t) => t.show);
  const current = visible.find((t) => t.id === tab) ?? visible[0]!;
  return (
    <div className="page">
      <PageHeader title={admin ? 'Administration' : 'Account'} />
      <nav className="tabs" aria-label="Sections">
        {visible.map((t) => (
          <Link key={t.id} to={`/admin/${t.id}`} className={`tab ${t.id === current.id ? 'active' : ''}`}>
            {t.label}
          </Link>
        ))}
      </nav>
      {current.id === 'users' && <Users />}
      {current.id === 'groups' && <Groups />}
      {current.id === 'keys' && <ApiKeys />}
      {current.id === 'audit' && <Audit />}
    </div>
  );
}

function Users() {
  const users = useLoad((signal) => api.get<{ users: User[] }>('/v1/users?limit=200', signal).then((r) => r.users.filter((u) => !u.is_system)), []);
  const [form, setForm] = useState({ handle: '', password: '', display_name: '' });
  const toast = useUi((s) => s.toast);
  const { error, onSubmit: create } = useFormSubmit(async () => {
    await api.post('/v1/users', { handle: form.handle.trim(), password: form.password, ...(form.display_name.trim() ? { display_name: form.display_name.trim() } : {}) });
    toast(`User ${form.handle} created`);
    setForm({ handle: '', password: '', display_name: '' });
    users.reload();
  });
  return (
    <>
      <form className="card form row wrap" onSubmit={create} aria-label="New user">
        <label className="grow">
          Handle
          <input name="new-handle" value={form.handle} onChange={(e) => setForm({ ...form, handle: e.target.value })} required autoComplete="off" />
        </label>
        <label className="grow">
          Display name
          <input value={form.display_name} onChange={(e) => setForm({ ...form, display_name: e.target.value })} />
        </label>
        <label className="grow">
          Password
          <input name="new-password" type="password" minLength={8} value={form.password} onChange={(e) => setForm({ ...form, password: e.target.value })} required autoComplete="new-password" />
        </label>
        <button type="submit" className="btn primary align-end">
          Create user
        </button>
        {error && <ErrorNote error={error} />}
      </form>
      <Loadable state={users} label="Loading users">
        {(list) => (
          <table className="table">
            <thead>
              <tr>
                <th>User</th>
                <th>Status</th>
                <th className="hide-narrow">Created</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.map((u) => (
                <tr key={u.id}>
                  <td>
                    <strong>{u.handle}</strong>
                    <div className="muted small">{u.display_name ?? u.email ?? ''}</div>
                  </td>
                  <td>
                    <StatusBadge status={u.is_active ? 'active' : 'disabled'} />
                  </td>
                  <td className="hide-narrow">
                    <Time iso={u.created_at} />
                  </td>
                  <td className="actions">
                    {u.is_active ? (
                      <ActionButton className="btn small ghost" confirm={`Disable ${u.handle}? Their sessions end and their API keys are revoked, for good: enabling them again restores neither.`} onAction={() => api.post(`/v1/users/${enc(u.id)}/disable`).then(users.reload)}>
                        Disable
                      </ActionButton>
                    ) : (
                      <ActionButton className="btn small ghost" onAction={() => api.post(`/v1/users/${enc(u.id)}/enable`).then(users.reload)}>
                        Enable
                      </ActionButton>
                    )}
                    <ActionButton
                      className="btn small ghost"
                      onAction={async () => {
                        const pw = window.prompt(`New password for ${u.handle} (at least 8 characters). Their sessions end.`);
                        if (!pw) return;
                        await api.post(`/v1/users/${enc(u.id)}/reset_password`, { new_password: pw });
                        toast(`Password of ${u.handle} reset`);
                      }}
                    >
                      Reset password
                    </ActionButton>
                    <ActionButton className="btn small ghost" onAction={() => api.post(`/v1/users/${enc(u.id)}/revoke_sessions`).then(() => toast(`${u.handle} signed out everywhere`))}>
                      Sign out everywhere
                    </ActionButton>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loadable>
    </>
  );
}

function Groups() {
  const groups = useLoad((signal) => api.get<{ groups: Group[] }>('/v1/groups?limit=200', signal).then((r) => r.groups), []);
  const [form, setForm] = useState({ slug: '', display_name: '' });
  const [open, setOpen] = useState<string | null>(null);
  const { error, onSubmit: create } = useFormSubmit(async () => {
    await api.post('/v1/groups', { slug: form.slug.trim(), display_name: form.display_name.trim() || form.slug.trim() });
    setForm({ slug: '', display_name: '' });
    groups.reload();
  });
  return (
    <>
      <form className="card form row wrap" onSubmit={create} aria-label="New group">
        <label className="grow">
          Slug
          <input value={form.slug} onChange={(e) => setForm({ ...form, slug: e.target.value })} required placeholder="research" />
        </label>
        <label className="grow">
          Name
          <input value={form.display_name} onChange={(e) => setForm({ ...form, display_name: e.target.value })} placeholder="Research team" />
        </label>
        <button type="submit" className="btn primary align-end">
          Create group
        </button>
        {error && <ErrorNote error={error} />}
      </form>
      <Loadable state={groups} label="Loading groups">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No groups">Groups let you grant roles to several users at once.</Empty>
          ) : (
            <ul className="list">
              {list.map((g) => (
                <li key={g.id} className="card">
                  <div className="row">
                    <button type="button" className="btn ghost grow left" onClick={() => setOpen(open === g.id ? null : g.id)} aria-expanded={open === g.id}>
                      <strong>{g.display_name}</strong> <span className="muted">({g.slug})</span>
                    </button>
                    <span className="muted small">{g.member_count} members</span>
                    <StatusBadge status={g.is_active ? 'active' : 'inactive'} />
                  </div>
                  {open === g.id && <Members group={g} onChange={groups.reload} />}
                </li>
              ))}
            </ul>
          )
        }
      </Loadable>
    </>
  );
}

function Members({ group, onChange }: { group: Group; onChange(): void }) {
  const members = useLoad((signal) => api.get<{ members: GroupMember[] }>(`/v1/groups/${enc(group.id)}/members?is_active=true`, signal).then((r) => r.members), [group.id]);
  const users = useLoad((signal) => api.get<{ users: User[] }>('/v1/users?is_active=true&limit=200', signal).then((r) => r.users.filter((u) => !u.is_system)), []);
  const [pick, setPick] = useState('');
  const reload = () => {
    members.reload();
    onChange();
  };
  return (
    <div className="members">
      <Loadable state={members}>
        {(list) => (
          <ul className="chips">
            {list.length === 0 && <li className="muted small">No members</li>}
            {list.map((m) => (
              <li key={m.user_id} className="chip">
                {m.handle}
                <ActionButton className="chip-x" title={`Remove ${m.handle}`} onAction={() => api.del(`/v1/groups/${enc(group.id)}/members/${enc(m.user_id)}`).then(reload)}>
                  ×
                </ActionButton>
              </li>
            ))}
          </ul>
        )}
      </Loadable>
      <div className="row">
        <select aria-label="User to add" value={pick} onChange={(e) => setPick(e.target.value)}>
          <option value="">Add a user…</option>
          {users.data?.map((u) => (
            <option key={u.id} value={u.id}>
              {u.handle}
            </option>
          ))}
        </select>
        <ActionButton className="btn small" disabled={!pick} onAction={() => api.post(`/v1/groups/${enc(group.id)}/members`, { user_id: pick }).then(() => (setPick(''), reload()))}>
          Add
        </ActionButton>
      </div>
    </div>
  );
}

function ApiKeys() {
  const keys = useLoad((signal) => api.get<{ api_keys: ApiKey[] }>('/v1/api-keys', signal).then((r) => r.api_keys), []);
  const [name, setName] = useState('');
  const [created, setCreated] = useState<(ApiKey & { key: string }) | null>(null);
  const { error, onSubmit: create } = useFormSubmit(async () => {
    setCreated(await api.post<ApiKey & { key: string }>('/v1/api-keys', { name: name.trim() }));
    setName('');
    keys.reload();
  });
  return (
    <>
      <p className="muted">Personal keys for scripts, editors and OpenAI clients on your network (base URL <code>{location.origin}/v1</code>). They act as you.</p>
      <form className="card form row wrap" onSubmit={create} aria-label="New API key">
        <label className="grow">
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="laptop, open-webui…" required />
        </label>
        <button type="submit" className="btn primary align-end">
          Create key
        </button>
        {error && <ErrorNote error={error} />}
      </form>
      {created && (
        <div className="card notice ok" role="status" data-testid="new-key">
          <strong>Key “{created.name}” created. Copy it now: it is shown only once.</strong>
          <div className="copy-row">
            <code className="command">{created.key}</code>
            <CopyButton text={created.key} />
          </div>
          <button type="button" className="btn small ghost" onClick={() => setCreated(null)}>
            I have stored it
          </button>
        </div>
      )}
      <Loadable state={keys} label="Loading keys">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No API keys">Create one to use CyNode from another program.</Empty>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Key</th>
                  <th className="hide-narrow">Last used</th>
                  <th>Status</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {list.map((k) => (
                  <tr key={k.id}>
                    <td>{k.name}</td>
                    <td>
                      <code>{k.prefix}…</code>
                    </td>
                    <td className="hide-narrow">
                      <Time iso={k.last_used_at} />
                    </td>
                    <td>
                      <StatusBadge status={k.revoked_at ? 'revoked' : k.expires_at && Date.parse(k.expires_at) < Date.now() ? 'expired' : 'active'} />
                    </td>
                    <td className="actions">
                      {!k.revoked_at && (
                        <ActionButton className="btn small danger ghost" confirm={`Revoke “${k.name}”? Programs using it stop working at once.`} onAction={() => api.del(`/v1/api-keys/${enc(k.id)}`).then(keys.reload)}>
                          Revoke
                        </ActionButton>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loadable>
    </>
  );
}

interface AuditFilter {
  category: string;
  outcome: string;
  action: string;
  since: string;
}

function Audit() {
  const [filter, setFilter] = useState<AuditFilter>({ category: '', outcome: '', action: '', since: '' });
  const [applied, setApplied] = useState(filter);
  const [pages, setPages] = useState<string[]>([]);
  const cursor = pages.at(-1);
  const events = useLoad(
    (signal) =>
      api.get<{ events: AuditEvent[]; next_cursor?: string }>(
        `/v1/audit${qs({ limit: 50, category: applied.category, outcome: applied.outcome, action: applied.action.trim(), since: applied.since ? new Date(applied.since).toISOString() : '', cursor })}`,
        signal,
      ),
    [applied, cursor],
  );
  return (
    <>
      <form
        className="card form row wrap"
        aria-label="Audit filters"
        onSubmit={(e) => {
          e.preventDefault();
          setPages([]);
          setApplied(filter);
        }}
      >
        <label>
          Category
          <select value={filter.category} onChange={(e) => setFilter({ ...filter, category: e.target.value })}>
            <option value="">any</option>
            <option value="auth">auth</option>
            <option value="admin">admin</option>
            <option value="access">access</option>
          </select>
        </label>
        <label>
          Outcome
          <select value={filter.outcome} onChange={(e) => setFilter({ ...filter, outcome: e.target.value })}>
            <option value="">any</option>
            <option value="success">success</option>
            <option value="failure">failure</option>
            <option value="allow">allow</option>
            <option value="deny">deny</option>
          </select>
        </label>
        <label className="grow">
          Action
          <input value={filter.action} onChange={(e) => setFilter({ ...filter, action: e.target.value })} placeholder="login_failure" />
        </label>
        <label>
          Since
          <input type="datetime-local" value={filter.since} onChange={(e) => setFilter({ ...filter, since: e.target.value })} />
        </label>
        <button type="submit" className="btn primary align-end">
          Filter
        </button>
      </form>
      <Loadable state={events} label="Loading the audit trail">
        {(page) =>
          page.events.length === 0 ? (
            <Empty title="No events match" />
          ) : (
            <>
              <table className="table audit">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Action</th>
                    <th>Who</th>
                    <th className="hide-narrow">Resource</th>
                    <th className="hide-narrow">From</th>
                  </tr>
                </thead>
                <tbody>
                  {page.events.map((ev) => (
                    <tr key={ev.event_id}>
                      <td>
                        <Time iso={ev.ts} />
                      </td>
                      <td>
                        <span className={`badge status-${ev.outcome}`}>{ev.outcome}</span> {ev.category}/{ev.action}
                        {ev.reason && <div className="muted small">{ev.reason}</div>}
                      </td>
                      <td>{ev.actor_handle ?? <span className="muted">—</span>}</td>
                      <td className="hide-narrow small">{ev.resource_type ? `${ev.resource_type} ${ev.resource_id?.slice(0, 8) ?? ''}` : '—'}</td>
                      <td className="hide-narrow small muted">{ev.ip ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <div className="row">
                <button type="button" className="btn small" disabled={pages.length === 0} onClick={() => setPages(pages.slice(0, -1))}>
                  ← Newer
                </button>
                <button type="button" className="btn small" disabled={!page.next_cursor} onClick={() => page.next_cursor && setPages([...pages, page.next_cursor])}>
                  Older →
                </button>
              </div>
            </>
          )
        }
      </Loadable>
    </>
  );
}
