import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

// The console proper (chat, tasks, runs, nodes, admin) is built in the console issue.
function App() {
  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', padding: '2rem' }}>
      <h1>CyNode</h1>
      <p>The orchestrator is running. The console is on its way; the API is at <code>/v1</code>.</p>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
