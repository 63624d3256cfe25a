import { useEffect } from 'react';
import { useSession } from './store/session';
import { useUi } from './store/ui';
import { Layout } from './components/Layout';
import { Spinner } from './components/common';
import { SignIn } from './pages/SignIn';
import { ChatPage } from './pages/Chat';
import { TasksPage } from './pages/Tasks';
import { RunsPage } from './pages/Runs';
import { NodesPage } from './pages/Nodes';
import { AdminPage } from './pages/Admin';
import { SettingsPage } from './pages/Settings';

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
      <Page path={path} />
    </Layout>
  );
}
