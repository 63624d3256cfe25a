import { Suspense, lazy, useEffect } from 'react';
import { useSession } from './store/session';
import { useUi } from './store/ui';
import { Layout } from './components/Layout';
import { Spinner } from './components/common';
import { SignIn } from './pages/SignIn';
import { ChatPage } from './pages/Chat';

// Chat is the first page people see: it ships in the entry bundle; the others load on first visit.
const TasksPage = lazy(() => import('./pages/Tasks').then((m) => ({ default: m.TasksPage })));
const RunsPage = lazy(() => import('./pages/Runs').then((m) => ({ default: m.RunsPage })));
const NodesPage = lazy(() => import('./pages/Nodes').then((m) => ({ default: m.NodesPage })));
const AdminPage = lazy(() => import('./pages/Admin').then((m) => ({ default: m.AdminPage })));
const ConnectorsPage = lazy(() => import('./pages/Connectors').then((m) => ({ default: m.ConnectorsPage })));
const PolicyPage = lazy(() => import('./pages/Policy').then((m) => ({ default: m.PolicyPage })));
const SettingsPage = lazy(() => import('./pages/Settings').then((m) => ({ default: m.SettingsPage })));

function Page({ path }: { path: string }) {
  const [, section = '', ...rest] = path.split('/');
  const sub = rest.join('/') ? decodeURIComponent(rest.join('/')) : undefined;
  switch (section) {
    case 'chat':
      return <ChatPage threadId={sub} />;
    case 'tasks':
      return <TasksPage taskId={sub} />;
    case 'runs':
      return <RunsPage runId={sub} />;
    case 'nodes':
      return <NodesPage />;
    case 'connectors':
      return <ConnectorsPage connectorId={sub} />;
    case 'policy':
      return <PolicyPage tab={sub} />;
    case 'admin':
      return <AdminPage tab={sub} />;
    case 'settings':
      return <SettingsPage />;
    default:
      return <ChatPage />;
  }
}

export function App() {
  const status = useSession((s) => s.status);
  const init = useSession((s) => s.init);
  const path = useUi((s) => s.path);

  useEffect(() => {
    void init();
  }, [init]);

  useEffect(() => {
    const section = path.split('/')[1] || 'chat';
    document.title = `${section[0]!.toUpperCase()}${section.slice(1)} · CyNode`;
  }, [path]);

  if (status === 'loading') {
    return (
      <div className="boot">
        <Spinner label="Starting" />
      </div>
    );
  }
  if (status === 'signed-out') return <SignIn />;
  return (
    <Layout>
      <Suspense fallback={<Spinner />}>
        <Page path={path} />
      </Suspense>
    </Layout>
  );
}
