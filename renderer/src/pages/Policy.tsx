import { Empty, PageHeader } from '../components/common';
import { Link } from '../components/Layout';
import { AccessAudit } from '../components/policy/AccessAudit';
import { ExplainForm } from '../components/policy/ExplainForm';
import { RulesList } from '../components/policy/RulesList';
import { useSession } from '../store/session';

const TABS = [
  { id: 'rules', label: 'Rules' },
  { id: 'explain', label: 'Explain' },
  { id: 'access', label: 'Access audit' },
] as const;

/** Access rules, explain and the access audit: admins only (the gateway refuses others too). */
export function PolicyPage({ tab }: { tab?: string }) {
  const admin = useSession((s) => s.isAdmin());
  if (!admin) {
    return (
      <div className="page">
        <PageHeader title="Access policy" />
        <Empty title="Admins only">Ask an administrator to change who may use which model or connector.</Empty>
      </div>
    );
  }
  const current = TABS.find((t) => t.id === tab) ?? TABS[0];
  return (
    <div className="page">
      <PageHeader title="Access policy" />
      <nav className="tabs" aria-label="Sections">
        {TABS.map((t) => (
          <Link key={t.id} to={`/policy/${t.id}`} className={`tab ${t.id === current.id ? 'active' : ''}`}>
            {t.label}
          </Link>
        ))}
      </nav>
      {current.id === 'rules' && <RulesList />}
      {current.id === 'explain' && <ExplainForm />}
      {current.id === 'access' && <AccessAudit />}
    </div>
  );
}
