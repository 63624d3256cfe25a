import { randomBytes } from 'node:crypto';
import type { ChatMessage, OllamaTool } from '../chat/openai-features';
import type { ToolOutcome } from '../mcp/service';
import type { OllamaToolCall } from '../nodes/node-client';
import { callKey, parseArguments, resultText } from './tools';

/** Calls one model answer may make that are run; more are refused as tool errors. */
const MAX_CALLS_PER_STEP = 8;

/** What happens during a turn, as it happens (streamed as progress, recorded in the trail). */
export type StepEvent =
  | { kind: 'step'; step: number }
  | { kind: 'tool_call'; step: number; name: string; args: Record<string, unknown> }
  | { kind: 'tool_calls'; step: number; content: string; calls: Array<{ id: string; name: string; args: Record<string, unknown> }> }
  | { kind: 'tool_result'; step: number; callId: string; name: string; outcome: ToolOutcome; dispatched: boolean; content: string };

export interface LoopDeps {
  /** One model call with the tools; content and tool calls of the whole answer. */
  generate(messages: ChatMessage[], tools: OllamaTool[], signal: AbortSignal): Promise<{ content: string; toolCalls: OllamaToolCall[] }>;
  /** One tool call through the MCP pipeline (policy, schema, scoping, audit). */
  callTool(name: string, args: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome>;
  onEvent?(e: StepEvent): void;
  /** After a step's calls: a message when the turn must wait for the user (calls held for approval). */
  waiting?(): string | null;
}

export interface LoopInput {
  messages: ChatMessage[];
  tools: OllamaTool[];
  maxSteps: number;
  maxSeconds: number;
  /** The client went away (or the server stops): the turn ends at once, with an AbortError. */
  signal: AbortSignal;
}

export interface LoopResult {
  answer: string;
  steps: number;
  ended: 'answer' | 'max_steps' | 'time_limit' | 'approval';
  /** Every tool call's name and outcome, in order. */
  calls: Array<{ name: string; ok: boolean; errorType?: string }>;
}

const toolError = (type: string, message: string): ToolOutcome => ({ ok: false, error: { type, message } });

/**
 * The agent's tool loop (docs/decisions/0007-tool-surface.md): ask the model with the tools; run
 * each call it makes through the MCP pipeline and hand the results back as `tool` messages; until
 * it answers in text, or the step or time limit ends the turn with a report of what happened.
 * Bad calls (unknown tool, arguments that are no JSON object or fail the schema, the same call
 * twice in a row) are answered as tool errors the model can correct, never thrown.
 */
export async function runAgentLoop(input: LoopInput, deps: LoopDeps): Promise<LoopResult> {
  const messages = [...input.messages];
  const calls: LoopResult['calls'] = [];
  const timeUp = AbortSignal.timeout(input.maxSeconds * 1000);
  const signal = AbortSignal.any([input.signal, timeUp]);
  let previous: string | undefined;
  const ended = (why: 'max_steps' | 'time_limit', steps: number): LoopResult => ({ answer: report(why, input, calls), steps, ended: why, calls });
  for (let step = 1; step <= input.maxSteps; step++) {
    deps.onEvent?.({ kind: 'step', step });
    let answer: { content: string; toolCalls: OllamaToolCall[] };
    try {
      answer = await deps.generate(messages, input.tools, signal);
    } catch (err) {
      if (input.signal.aborted) throw err;
      if (timeUp.aborted) return ended('time_limit', step);
      throw err;
    }
    if (answer.toolCalls.length === 0) return { answer: answer.content.trim() === '' ? report('empty', input, calls) : answer.content, steps: step, ended: 'answer', calls };
    const sent = answer.toolCalls.map((c) => ({ id: `call_${randomBytes(9).toString('base64url')}`, call: c }));
    const assistant: ChatMessage = { role: 'assistant', content: answer.content, toolCalls: sent.map(({ id, call }) => ({ id, name: String(call.function?.name ?? ''), arguments: typeof call.function?.arguments === 'object' && call.function.arguments !== null ? call.function.arguments : {} })) };
    messages.push(assistant);
    deps.onEvent?.({ kind: 'tool_calls', step, content: answer.content, calls: assistant.toolCalls!.map((c) => ({ id: c.id, name: c.name, args: c.arguments })) });
    for (const [i, { id, call }] of sent.entries()) {
      const name = String(call.function?.name ?? '');
      const parsed = parseArguments(call.unparsedArguments ?? call.function?.arguments);
      let outcome: ToolOutcome;
      let dispatched = false;
      if (i >= MAX_CALLS_PER_STEP) {
        outcome = toolError('too_many_calls', `At most ${MAX_CALLS_PER_STEP} tool calls per answer are run; this one was not`);
      } else if (!parsed.ok) {
        outcome = toolError('invalid_arguments', parsed.message);
      } else {
        deps.onEvent?.({ kind: 'tool_call', step, name, args: parsed.args });
        const key = callKey(name, parsed.args);
        if (key === previous) {
          outcome = toolError('repeated_call', `You just called ${name.slice(0, 100)} with these same arguments; its result is above. Use it, call something else, or answer.`);
        } else {
          try {
            outcome = await deps.callTool(name, parsed.args, signal);
            dispatched = true;
          } catch (err) {
            if (input.signal.aborted) throw err;
            outcome = toolError('internal', 'The tool failed unexpectedly');
          }
        }
        previous = key;
      }
      calls.push({ name, ok: outcome.ok, ...(outcome.ok ? {} : { errorType: outcome.error.type }) });
      const content = resultText(outcome);
      deps.onEvent?.({ kind: 'tool_result', step, callId: id, name, outcome, dispatched, content });
      messages.push({ role: 'tool', content, toolCallId: id, toolName: name });
      if (input.signal.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      if (timeUp.aborted) return ended('time_limit', step);
    }
    const waiting = deps.waiting?.();
    if (waiting) return { answer: waiting, steps: step, ended: 'approval', calls };
  }
  return ended('max_steps', input.maxSteps);
}

/** The final message of a turn the model did not finish: why it ended and what was done. */
function report(why: 'max_steps' | 'time_limit' | 'empty', input: LoopInput, calls: LoopResult['calls']): string {
  const head =
    why === 'max_steps'
      ? `I stopped after ${input.maxSteps} steps without a final answer.`
      : why === 'time_limit'
        ? `I stopped: the time limit of ${input.maxSeconds} s was reached.`
        : 'The model gave no answer.';
  if (calls.length === 0) return `${head} No tool was called.`;
  const lines = calls.map((c) => `- ${c.name.slice(0, 100)}: ${c.ok ? 'ok' : `error (${c.errorType})`}`);
  return `${head} Tool calls made:\n${lines.join('\n')}`;
}
