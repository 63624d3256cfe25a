import { useEffect, useLayoutEffect, useRef, useState, type KeyboardEvent } from 'react';
import { api, enc, errorText, qs, stream } from '../api/client';
import type { ChatMessage, CompletionChunk, Model, Thread } from '../api/types';
import { ActionButton, Empty, ErrorNote, Spinner, Time, useLoad } from '../components/common';
import { AgentStep, PM_MODEL, ProgressLines, resultsByCall, splitProgress, stepCalls } from '../components/AgentSteps';
import { Link } from '../components/Layout';
import { Markdown } from '../components/Markdown';
import { Icon } from '../components/Icon';
import { ProjectPicker, useProject } from '../components/ProjectPicker';
import { canOperate, useSession } from '../store/session';
import { useUi } from '../store/ui';

interface Pending {
  user: string;
  answer: string;
  /** Sent to the agent: its answer starts with progress lines. */
  agent?: boolean;
  state: 'streaming' | 'stopped' | 'failed';
  error?: string;
}

const SUGGESTIONS = ['Explain the difference between a process and a thread', 'Write a shell one-liner that finds the 10 largest files here', 'Summarise what a reverse proxy does, with an example config'];

function redactionKinds(m: ChatMessage): string[] {
  const kinds = m.metadata?.redaction_kinds;
  if (Array.isArray(kinds) && kinds.length) return kinds.map(String);
  return m.role === 'user' && m.content.includes('SECRET_REDACTED') ? ['secret'] : [];
}

function threadTitle(t: Thread): string {
  return t.title?.trim() || `Chat of ${new Date(t.created_at).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}`;
}

/** The open thread's title, with rename (stored redacted) and delete (with its messages, for good). */
function ThreadActions({ thread, onRenamed, onDeleted }: { thread: Thread | undefined; onRenamed: () => void; onDeleted: () => void }) {
  const [editing, setEditing] = useState<string | null>(null);
  const toast = useUi((s) => s.toast);
  if (!thread) return null;
  const save = async () => {
    const title = editing?.trim() ?? '';
    setEditing(null);
    try {
      await api.patch(`/v1/chat/threads/${enc(thread.id)}`, { title: title === '' ? null : title });
      onRenamed();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  };
  if (editing !== null) {
    return (
      <form
        className="thread-actions"
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <input aria-label="Chat title" value={editing} maxLength={200} autoFocus onChange={(e) => setEditing(e.target.value)} onKeyDown={(e) => e.key === 'Escape' && setEditing(null)} />
        <button type="submit" className="btn small">
          Save
        </button>
      </form>
    );
  }
  return (
    <div className="thread-actions">
      <span className="thread-heading" title={threadTitle(thread)}>
        {threadTitle(thread)}
      </span>
      <button type="button" className="btn ghost small" onClick={() => setEditing(thread.title ?? '')}>
        Rename
      </button>
      <ActionButton className="btn ghost small danger" confirm="Delete this chat and all its messages? This cannot be undone." onAction={async () => {
        await api.del(`/v1/chat/threads/${enc(thread.id)}`);
        onDeleted();
      }}>
        Delete
      </ActionButton>
    </div>
  );
}

export function ChatPage({ threadId }: { threadId?: string }) {
  const me = useSession((s) => s.me);
  const { navigate, model: savedModel, setModel, toast } = useUi();
  const { projectId, projects, error: projectError } = useProject();
  const [listOpen, setListOpen] = useState(false);

  const threads = useLoad(
    (signal) => (projectId ? api.get<{ threads: Thread[] }>(`/v1/chat/threads${qs({ project_id: projectId, limit: 100 })}`, signal).then((r) => r.threads) : Promise.resolve<Thread[]>([])),
    [projectId],
  );
  const models = useLoad((signal) => api.get<{ data: Model[] }>('/v1/models', signal).then((r) => r.data), [], 30_000);
  // The project-manager agent is the default when it is offered; a model chosen before wins.
  const model = models.data?.some((m) => m.id === savedModel) ? savedModel : ((models.data?.some((m) => m.id === PM_MODEL) ? PM_MODEL : models.data?.[0]?.id) ?? null);

  // A thread this page just created: its (empty) history is known, do not reload over the stream.
  const created = useRef<string | null>(null);
  const messages = useLoad(
    (signal) =>
      !threadId || created.current === threadId
        ? Promise.resolve<ChatMessage[]>([])
        : api.get<{ messages: ChatMessage[] }>(`/v1/chat/threads/${enc(threadId)}/messages?limit=200`, signal).then((r) => r.messages),
    [threadId],
  );
  const [pending, setPending] = useState<Pending | null>(null);
  const [input, setInput] = useState('');
  const abortRef = useRef<AbortController | null>(null);
  const scroller = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  const streaming = pending?.state === 'streaming';

  useEffect(() => {
    // Another thread: whatever was streaming belongs to the old one.
    if (created.current !== threadId) {
      abortRef.current?.abort();
      setPending(null);
    }
    setListOpen(false);
  }, [threadId]);

  useEffect(() => () => abortRef.current?.abort(), []);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  });

  const send = async (text: string) => {
    const content = text.trim();
    if (!content || streaming) return;
    if (!model) {
      toast('No model is available yet', 'error');
      return;
    }
    setInput('');
    stickToBottom.current = true;
    const history = (messages.data ?? []).filter((m) => m.role === 'user' || m.role === 'assistant').map((m) => ({ role: m.role, content: m.content }));
    const ctl = new AbortController();
    abortRef.current = ctl;
    let answer = '';
    let frame = 0;
    const flush = () => {
      frame = 0;
      setPending((p) => (p ? { ...p, answer } : p));
    };
    setPending({ user: content, answer: '', state: 'streaming', agent: model === PM_MODEL });
    let thread = threadId;
    try {
      if (!thread) {
        const t = await api.post<Thread>('/v1/chat/threads', { project_id: projectId ?? undefined, title: content.replace(/\s+/g, ' ').slice(0, 80) });
        thread = t.id;
        created.current = t.id;
        navigate(`/chat/${t.id}`, true);
        threads.reload();
      }
      await stream('/v1/chat/completions', {
        method: 'POST',
        signal: ctl.signal,
        headers: { 'x-cynode-thread-id': thread, ...(projectId ? { 'openai-project': projectId } : {}) },
        body: { model, stream: true, messages: [...history, { role: 'user', content }] },
        onEvent: (e) => {
          if (e.data === '[DONE]') return;
          const chunk = JSON.parse(e.data) as CompletionChunk;
          if (chunk.error) throw new Error(chunk.error.message);
          const delta = chunk.choices?.[0]?.delta?.content;
          if (delta) {
            answer += delta;
            frame ||= requestAnimationFrame(flush);
          }
        },
      });
      cancelAnimationFrame(frame);
      await refresh(thread);
      setPending(null);
    } catch (err) {
      cancelAnimationFrame(frame);
      const stopped = ctl.signal.aborted;
      await refresh(thread);
      setPending({ user: content, answer, agent: model === PM_MODEL, state: stopped ? 'stopped' : 'failed', error: stopped ? undefined : errorText(err) });
      if (!stopped && !answer) setInput(content);
    } finally {
      abortRef.current = null;
      created.current = null;
      threads.reload();
    }
  };

  /** The stored (redacted) messages replace what was typed, without a flash of an empty thread. */
  const refresh = async (thread: string | undefined) => {
    if (!thread) return;
    try {
      const r = await api.get<{ messages: ChatMessage[] }>(`/v1/chat/threads/${enc(thread)}/messages?limit=200`);
      messages.setData(r.messages);
    } catch {
      messages.reload();
    }
  };

  const stored = messages.data ?? [];
  const results = resultsByCall(stored);

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send(input);
    }
  };

  const noModels = models.data !== undefined && models.data.length === 0;

  return (
    <div className={`chat ${listOpen ? 'threads-open' : ''}`}>
      <section className="threads" aria-label="Threads">
        <div className="threads-head">
          <ProjectPicker projectId={projectId} projects={projects} onChange={() => navigate('/chat')} />
          <button type="button" className="btn primary" onClick={() => navigate('/chat')}>
            + New chat
          </button>
        </div>
        {projectError && <ErrorNote error={projectError} />}
        <div className="thread-list">
          {threads.data === undefined ? (
            threads.error ? (
              <ErrorNote error={threads.error} onRetry={threads.reload} />
            ) : (
              <Spinner label="Loading chats" />
            )
          ) : threads.data.length === 0 ? (
            <Empty title="No chats yet">Your conversations in this project appear here.</Empty>
          ) : (
            <ul>
              {threads.data.map((t) => (
                <li key={t.id}>
                  <Link to={`/chat/${t.id}`} className={`thread-item ${t.id === threadId ? 'active' : ''}`}>
                    <span className="thread-title">{threadTitle(t)}</span>
                    <span className="thread-time">
                      <Time iso={t.updated_at} />
                    </span>
                  </Link>
                </li>
              ))}
            </ul>
          )}
        </div>
      </section>

      <section className="conversation" aria-label="Conversation">
        <header className="chat-head">
          <button type="button" className="btn ghost small threads-toggle" onClick={() => setListOpen(!listOpen)} aria-expanded={listOpen}>
            <Icon name="menu" size={16} /> Chats
          </button>
          {threadId && (
            <ThreadActions
              thread={threads.data?.find((t) => t.id === threadId)}
              onRenamed={threads.reload}
              onDeleted={() => {
                threads.reload();
                navigate('/chat');
              }}
            />
          )}
          <div className="model-picker">
            {models.data === undefined ? (
              models.error ? (
                <span className="muted">Models unavailable</span>
              ) : (
                <span className="muted">Loading models…</span>
              )
            ) : noModels ? (
              <span className="chip warn">No model</span>
            ) : (
              <select aria-label="Model" value={model ?? ''} onChange={(e) => setModel(e.target.value)}>
                {models.data.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.id}
                  </option>
                ))}
              </select>
            )}
          </div>
        </header>

        <div
          className="messages"
          ref={scroller}
          onScroll={(e) => {
            const el = e.currentTarget;
            stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
          }}
        >
          <div className="messages-inner">
            {noModels && (
              <div className="notice warn">
                No node serves a model right now, so nobody can answer.{' '}
                {canOperate(me) ? (
                  <>
                    Pull one on the <Link to="/nodes">Nodes</Link> page, or add a node with a GPU.
                  </>
                ) : (
                  'Ask an administrator to add a model.'
                )}
              </div>
            )}
            {threadId && messages.data === undefined && !messages.error && <Spinner label="Loading messages" />}
            {messages.error && <ErrorNote error={messages.error} onRetry={messages.reload} />}
            {!threadId && !pending && (
              <div className="welcome">
                <h2>What can I help with{me?.display_name ? `, ${me.display_name.split(' ')[0]}` : ''}?</h2>
                <p className="muted">Answers come from models on your own machines. Secrets you paste are redacted before anything is stored or sent.</p>
                <div className="suggestions">
                  {SUGGESTIONS.map((s) => (
                    <button key={s} type="button" className="suggestion" disabled={!model} onClick={() => void send(s)}>
                      {s}
                    </button>
                  ))}
                </div>
              </div>
            )}
            {threadId && messages.data?.length === 0 && !pending && <Empty title="This chat is empty">Send a message to start.</Empty>}
            {stored.map((m) => {
              // An agent turn's steps: its tool calls with their results (tool messages render inside them).
              const calls = stepCalls(m);
              if (calls.length > 0) return <AgentStep key={m.id} message={m} calls={calls} results={results} />;
              return m.role === 'tool' ? null : <MessageView key={m.id} message={m} />;
            })}
            {pending?.state === 'streaming' && (
              <div className="msg user">
                <div className="bubble">{pending.user}</div>
              </div>
            )}
            {pending && (pending.answer || pending.state === 'streaming') && (
              <div className={`msg assistant ${pending.state}`} aria-busy={pending.state === 'streaming'}>
                <div className="avatar" aria-hidden="true">
                  <Icon name="logo" size={14} />
                </div>
                <div className="bubble">
                  {pending.agent ? <PendingAgent text={pending.answer} streaming={pending.state === 'streaming'} /> : pending.answer ? <Markdown text={pending.answer} /> : <span className="typing" aria-label="Thinking" />}
                  {pending.state === 'stopped' && <div className="msg-meta">Stopped</div>}
                </div>
              </div>
            )}
            {pending?.state === 'failed' && <ErrorNote error={pending.error ?? 'The answer failed'} />}
          </div>
        </div>

        <form
          className="composer"
          onSubmit={(e) => {
            e.preventDefault();
            void send(input);
          }}
        >
          <AutoTextarea value={input} onChange={setInput} onKeyDown={onKey} disabled={noModels} placeholder={noModels ? 'No model available' : `Message ${model ?? ''}`} />
          {streaming ? (
            <button type="button" className="btn danger" onClick={() => abortRef.current?.abort()} aria-label="Stop">
              Stop
            </button>
          ) : (
            <button type="submit" className="btn primary" disabled={!input.trim() || !model} aria-label="Send">
              Send ↑
            </button>
          )}
        </form>
      </section>
    </div>
  );
}

function MessageView({ message: m }: { message: ChatMessage }) {
  const kinds = redactionKinds(m);
  if (m.role === 'user') {
    return (
      <div className="msg user">
        <div className="bubble">{m.content}</div>
        {kinds.length > 0 && (
          <div className="notice redacted" role="note">
            <Icon name="lock" size={14} /> Secrets were removed from this message before it was stored or sent to a model ({kinds.join(', ')}). They appear as <code>SECRET_REDACTED</code>.
          </div>
        )}
      </div>
    );
  }
  return (
    <div className="msg assistant">
      <div className="avatar" aria-hidden="true">
        <Icon name="logo" size={14} />
      </div>
      <div className="bubble">
        <Markdown text={m.content} />
        {typeof m.metadata?.model === 'string' && <div className="msg-meta">{m.metadata.model}</div>}
      </div>
    </div>
  );
}

/** An agent turn as it streams: what it does, line by line, then its answer. */
function PendingAgent({ text, streaming }: { text: string; streaming: boolean }) {
  const { progress, answer } = splitProgress(text);
  return (
    <>
      <ProgressLines lines={progress} />
      {answer ? <Markdown text={answer} /> : streaming && <span className="typing" aria-label="Thinking" />}
    </>
  );
}

function AutoTextarea({ value, onChange, onKeyDown, disabled, placeholder }: { value: string; onChange(v: string): void; onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>): void; disabled?: boolean; placeholder: string }) {
  const ref = useRef<HTMLTextAreaElement>(null);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 240)}px`;
  }, [value]);
  return <textarea ref={ref} rows={1} aria-label="Message" title="Enter sends, Shift+Enter starts a new line" value={value} disabled={disabled} placeholder={placeholder} onChange={(e) => onChange(e.target.value)} onKeyDown={onKeyDown} autoFocus />;
}
