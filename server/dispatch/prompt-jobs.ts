import type { Db } from '../db';
import { NodeCallError, type NodeClient } from '../nodes/node-client';
import { inferenceNodes } from '../nodes/queries';
import { redact } from '../redaction/redaction';
import { inFlightStates, leaseAlive, taskPrompt, type RunningJob } from './store';
import { RETRY_FIRST_MS, RETRY_MAX_MS, message, sleep, timeoutOf, type DispatchLogger, type LeasedJobs } from './job-call';

/**
 * A prompt task's job: the prompt, redacted, as one user message to the node's Ollama (not
 * streamed to anyone, so the whole answer is awaited); the answer becomes the job's stdout.
 * Transient failures before any answer are retried on the same node while the lease holds;
 * the lost-job sweep moves the job elsewhere when the node goes away.
 */
export class PromptJobs {
  constructor(
    private readonly db: Db,
    private readonly leased: LeasedJobs,
    private readonly log: DispatchLogger,
    /** Without it prompt jobs are lost as if their node had stopped serving inference. */
    private readonly inference?: NodeClient,
  ) {}

  /** Runs the job until it ends; `signal` aborts when the task is canceled or the job moved on. */
  async run(job: RunningJob, signal: AbortSignal): Promise<void> {
    const timeoutSeconds = timeoutOf(job.payload);
    const startedAt = new Date().toISOString();
    const node = job.node_id ? (await inferenceNodes(this.db)).find((n) => n.id === job.node_id) : undefined;
    const model = typeof job.payload.model === 'string' ? job.payload.model : node?.models[0];
    if (!node || !model || !this.inference) {
      // The node stopped serving inference since the claim: like losing it.
      await this.leased.lose(job, 'the node no longer serves inference');
      return;
    }
    const prompt = (await redact((await taskPrompt(this.db, job.task_id)) ?? '')).text;
    const deadline = AbortSignal.timeout(timeoutSeconds * 1000);
    const callSignal = AbortSignal.any([signal, deadline]);
    let delay = RETRY_FIRST_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const target = await this.leased.target(node.id);
        if (!target) throw new NodeCallError('the node has no Worker API address or token on record', false);
        const answer = await this.inference.chat(target, { model, messages: [{ role: 'user', content: prompt }], stream: true }, { signal: callSignal });
        const result = {
          version: 1 as const,
          task_id: job.task_id,
          job_id: job.id,
          status: 'completed' as const,
          exit_code: 0,
          stdout: answer.content,
          stderr: '',
          started_at: startedAt,
          ended_at: new Date().toISOString(),
          truncated: { stdout: false, stderr: false },
          node_slug: node.node_slug,
          model,
          usage: { prompt_tokens: answer.promptTokens, completion_tokens: answer.completionTokens },
        };
        await this.leased.end(job, { status: 'completed', result, failureCode: null, reason: null, outcome: 'completed' });
        return;
      } catch (err) {
        if (deadline.aborted && !signal.aborted) {
          await this.leased.end(job, { status: 'failed', result: null, failureCode: 'timeout', reason: `timed out after ${timeoutSeconds} s`, outcome: 'timeout' });
          return;
        }
        if (signal.aborted) {
          // Aborted because the task was canceled (or the job moved on): record the cancel if it is still ours.
          const [state] = await inFlightStates(this.db, [job.id]);
          if (state?.task_closed && state.status === 'running' && state.lease_id === job.lease_id) {
            await this.leased.end(job, { status: 'canceled', result: null, failureCode: null, reason: 'The task was canceled.', outcome: 'canceled' });
          }
          return;
        }
        const detail = message(err);
        if (err instanceof NodeCallError && err.transient && attempt < 3 && (await leaseAlive(this.db, job.id, job.lease_id))) {
          this.log.warn({ job_id: job.id, node_id: node.id, err: detail, retry_in_ms: delay }, 'inference call failed; retrying');
          await sleep(delay, callSignal);
          delay = Math.min(delay * 2, RETRY_MAX_MS);
          continue;
        }
        this.log.warn({ job_id: job.id, node_id: node.id, err: detail }, 'inference failed');
        await this.leased.end(job, { status: 'failed', result: null, failureCode: 'inference_failed', reason: `Inference failed on node "${node.node_slug}"; an admin finds the details in the server log.`, outcome: 'inference_failed', detail });
        return;
      }
    }
  }
}
