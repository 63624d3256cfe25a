import { describe, expect, it } from 'vitest';
import { decisionIn } from '../../server/agent/approvals';
import { runAgentLoop, type LoopDeps } from '../../server/agent/loop';
import { callKey, parseArguments } from '../../server/agent/tools';
import type { ToolOutcome } from '../../server/mcp/service';

/*
 * The agent's tool loop on its own, with the model and the tools as plain functions: the ends a
 * client cannot easily provoke through a node (the time limit, a client leaving, a flood of calls).
 */

const input = (over: Partial<Parameters<typeof runAgentLoop>[0]> = {}) => ({
  messages: [{ role: 'user' as const, content: 'go' }],
  tools: [],
  maxSteps: 4,
  maxSeconds: 60,
  signal: new AbortController().signal,
  ...over,
});

/** Waits until the signal aborts, then fails as an aborted fetch does. */
const untilAborted = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), { once: true }));

describe('the agent tool loop', () => {
  it('ends a turn whose model does not answer within the time limit with a message saying so', async () => {
    const deps: LoopDeps = { generate: (_m, _t, signal) => untilAborted(signal), callTool: async () => ({ ok: true, result: {} }) };
    const result = await runAgentLoop(input({ maxSeconds: 1 }), deps);
    expect(result).toMatchObject({ ended: 'time_limit', steps: 1 });
    expect(result.answer).toBe('I stopped: the time limit of 1 s was reached. No tool was called.');
  });

  it('ends at once with an AbortError when the client goes away, without another model call', async () => {
    const gone = new AbortController();
    let generations = 0;
    const deps: LoopDeps = {
      generate: async () => {
        generations++;
        return { content: '', toolCalls: [{ function: { name: 'task.list', arguments: { limit: generations } } }] };
      },
      callTool: async (): Promise<ToolOutcome> => {
        gone.abort();
        return { ok: true, result: {} };
      },
    };
    await expect(runAgentLoop(input({ signal: gone.signal }), deps)).rejects.toMatchObject({ name: 'AbortError' });
    expect(generations).toBe(1);
  });

  it('runs at most eight calls of one answer and refuses the rest as tool errors', async () => {
    const ran: string[] = [];
    let turn = 0;
    const deps: LoopDeps = {
      generate: async (messages) => {
        if (turn++ > 0) return { content: `done after ${messages.filter((m) => m.role === 'tool').length} results`, toolCalls: [] };
        return { content: '', toolCalls: Array.from({ length: 10 }, (_, i) => ({ function: { name: 'task.get', arguments: { task_id: `t${i}` } } })) };
      },
      callTool: async (name, args) => {
        ran.push(String(args.task_id));
        return { ok: true, result: { name } };
      },
    };
    const result = await runAgentLoop(input(), deps);
    expect(ran).toHaveLength(8);
    expect(result).toMatchObject({ ended: 'answer', answer: 'done after 10 results', steps: 2 });
    expect(result.calls.slice(8)).toEqual([
      { name: 'task.get', ok: false, errorType: 'too_many_calls' },
      { name: 'task.get', ok: false, errorType: 'too_many_calls' },
    ]);
  });

  it('ends the turn after a step whose calls wait for approval, with the question, once every call of the step was answered', async () => {
    let generations = 0;
    const held: string[] = [];
    const deps: LoopDeps = {
      generate: async () => {
        generations++;
        return { content: '', toolCalls: [{ function: { name: 'task.create', arguments: { prompt: 'x' } } }, { function: { name: 'task.list', arguments: {} } }] };
      },
      callTool: async (name): Promise<ToolOutcome> => {
        if (name === 'task.create') {
          held.push(name);
          return { ok: false, error: { type: 'approval_pending', message: 'held' } };
        }
        return { ok: true, result: {} };
      },
      waiting: () => (held.length > 0 ? `approve ${held.join(', ')}?` : null),
    };
    const result = await runAgentLoop(input(), deps);
    expect(generations).toBe(1);
    expect(result).toMatchObject({ ended: 'approval', steps: 1, answer: 'approve task.create?' });
    expect(result.calls).toEqual([
      { name: 'task.create', ok: false, errorType: 'approval_pending' },
      { name: 'task.list', ok: true },
    ]);
  });

  it('reads a decision from the first word of the next message only', () => {
    expect(['approve', 'Yes, go ahead', ' ok', 'APPROVED.'].map(decisionIn)).toEqual(['approve', 'approve', 'approve', 'approve']);
    expect(['deny', 'No thanks', 'reject it'].map(decisionIn)).toEqual(['deny', 'deny', 'deny']);
    expect(['Run `ls` instead', 'I approve', '', '42'].map(decisionIn)).toEqual([null, null, null, null]);
  });

  it('reads arguments given as a JSON string, and refuses other shapes', () => {
    expect(parseArguments('{"a":1}')).toEqual({ ok: true, args: { a: 1 } });
    expect(parseArguments(undefined)).toEqual({ ok: true, args: {} });
    expect(parseArguments('[1]')).toMatchObject({ ok: false });
    expect(parseArguments('{nope')).toMatchObject({ ok: false, message: expect.stringContaining('JSON') });
    // The same call whatever the key order.
    expect(callKey('x', { a: 1, b: { d: 2, c: 3 } })).toBe(callKey('x', { b: { c: 3, d: 2 }, a: 1 }));
  });
});
