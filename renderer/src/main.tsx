import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
// In this order: later files override earlier ones (narrow windows after the pages they reshape).
import './styles/base.css';
import './styles/controls.css';
import './styles/shell.css';
import './styles/states.css';
import './styles/sign-in.css';
import './styles/chat.css';
import './styles/nodes.css';
import './styles/runs.css';
import './styles/connectors.css';
import './styles/narrow.css';
import './styles/settings.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
