import type { ChatMessage } from '../api/types';
import { ApprovalCard, approvalIdOf } from './ApprovalCard';
import { Link } from './Layout';

/** The project-manager agent's model id (README "The project-manager agent (cynodeai.pm)"). */
export const PM_MODEL = 'cynodeai.pm';

/** One tool call of an agent step as its thread keeps it: name and argument shape, never values. */
interface StepCall {
  id: string;
  name: string;
  argsShape: Record<string, string>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The tool calls an assistant message made, or none when it is an ordinary answer. */
export function stepCalls(m: ChatMessage): StepCall[] {
  const calls = m.metadata?.tool_calls;
  if (m.role !== 'assistant' || !Array.isArray(calls)) return [];
  return calls.filter(isRecord).map((c) => ({
    id: String(c.id ?? ''),
    name: String(c.name ?? ''),
    argsShape: isRecord(c.args_shape) ? Object.fromEntries(Object.entries(c.args_shape).map(([k, v]) => [k, String(v)])) : {},
  }));
}

/** Tool results of the thread by the call they answer. */
export function resultsByCall(messages: readonly ChatMessage[]): Map<string, ChatMessage> {
  const byCall = new Map<string, ChatMessage>();
  for (const m of messages) {
    const id = m.metadata?.tool_call_id;
    if (m.role === 'tool' && typeof id === 'string') byCall.set(id, m);
  }
  return byCall;
}

/**
 * Tasks and runs a result names, for links. Results are stored as (possibly cut) JSON text, so
 * the ids are found in the text rather than by parsing it.
 */
function createdLinks(content: string): Array<{ kind: 'task' | 'run'; id: string }> {
  const seen = new Set<string>();
  const links: Array<{ kind: 'task' | 'run'; id: string }> = [];
  for (const match of content.matchAll(/"(task_id|run_id)":"([A-Za-z0-9._:-]{1,200})"/g)) {
    const kind = match[1] === 'task_id' ? 'task' : 'run';
    const key = `${kind}:${match[2]}`;
    if (seen.has(key)) continue;
    seen.add(key);
    links.push({ kind, id: match[2]! });
  }
  return links.slice(0, 10);
}

const argsSummary = (shape: Record<string, string>): string => {
  const parts = Object.entries(shape).map(([k, t]) => `${k}: ${t}`);
  return parts.length === 0 ? '(no arguments)' : parts.join(', ');
};

/** One tool call with its result: collapsed to name, arguments and status; open for the result. */
function StepItem({ call, result }: { call: StepCall; result: ChatMessage | undefined }) {
  const status = result?.metadata?.status;
  const errorType = result?.metadata?.error_type;
  const state = status === 'success' ? 'ok' : status === 'error' ? 'error' : 'none';
  const links = result ? createdLinks(result.content) : [];
  const approvalId = errorType === 'approval_pending' && result ? approvalIdOf(result.content) : null;
  return (
    <>
    <details className={`agent-step ${state}`} data-tool={call.name}>
      <summary>
        <span className="step-status" aria-label={state === 'ok' ? 'succeeded' : state === 'error' ? 'failed' : 'no result'}>
          {state === 'ok' ? '✓' : state === 'error' ? '✗' : '…'}
        </span>
        <code className="step-tool">{call.name}</code>
        <span className="step-args">{argsSummary(call.argsShape)}</span>
        {state === 'error' && typeof errorType === 'string' && <span className="chip warn step-error">{errorType}</span>}
      </summary>
      {links.length > 0 && (
        <div className="step-links">
          {links.map((l) => (
            <Link key={`${l.kind}:${l.id}`} to={`/${l.kind === 'task' ? 'tasks' : 'runs'}/${encodeURIComponent(l.id)}`}>
              {l.kind === 'task' ? 'Task' : 'Run'} {l.id.slice(0, 12)}
            </Link>
          ))}
        </div>
      )}
      {result ? <pre className="step-result">{result.content}</pre> : <p className="muted small">No result was stored (the turn ended first).</p>}
    </details>
    {approvalId && <ApprovalCard approvalId={approvalId} tool={call.name} />}
    </>
  );
}

/** An agent step: the text the model said alongside its calls, and each call with its result. */
export function AgentStep({ message, calls, results }: { message: ChatMessage; calls: StepCall[]; results: Map<string, ChatMessage> }) {
  return (
    <div className="msg assistant agent">
      <div className="avatar" aria-hidden="true">
        ▸
      </div>
      <div className="bubble agent-steps">
        {message.content.trim() !== '' && <p className="step-note">{message.content}</p>}
        {calls.map((c) => (
          <StepItem key={c.id || c.name} call={c} result={results.get(c.id)} />
        ))}
      </div>
    </div>
  );
}

/**
 * A streaming agent turn's text: its progress lines (`▸ tool {args}`, `✓ tool`, `✗ tool: type`,
 * one per line, README "Streaming") and what follows them, the answer.
 */
export function splitProgress(text: string): { progress: string[]; answer: string } {
  const progress: string[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf('\n');
    if (end < 0 || !/^[▸✓✗] /.test(rest)) break;
    progress.push(rest.slice(0, end));
    rest = rest.slice(end + 1);
  }
  return { progress, answer: rest };
}

/** The progress lines of a turn still streaming, one per line. */
export function ProgressLines({ lines }: { lines: string[] }) {
  if (lines.length === 0) return null;
  return (
    <ul className="progress-lines" aria-label="Agent progress">
      {lines.map((l, i) => (
        <li key={i} className={l.startsWith('✗') ? 'error' : l.startsWith('✓') ? 'ok' : ''}>
          {l}
        </li>
      ))}
    </ul>
  );
}
