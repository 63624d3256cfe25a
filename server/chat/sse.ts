import type { FastifyReply } from 'fastify';
import type { HttpProblem } from '../http/problem';
import { fragments, type OpenAiToolCall } from './tool-calls';

/**
 * Server-sent events in OpenAI's chunk format. The response starts (status 200, headers, the
 * role chunk) with the first token, or with the first keep-alive while the model loads; until
 * then a failure can still answer with a real status.
 *
 * Tokens leave at the end of the tick they arrived in: the tokens of one network read from the
 * node (a fast model's burst) go in one event and one write. A token waits for nothing that is
 * not already there, and the client reads one event instead of dozens.
 */
export class SseWriter {
  opened = false;
  private readonly keepalive: NodeJS.Timeout;
  private readonly prefix: string;
  private readonly suffix = '},"finish_reason":null}]}\n\n';
  private readonly head: string;
  /** `data: {…"delta":{` of a chunk: a delta and the suffix complete it. */
  private readonly start: string;
  private unsent = '';
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly reply: FastifyReply,
    private readonly meta: { id: string; created: number; model: string },
    keepaliveSeconds: number,
  ) {
    const start = `data: {"id":${JSON.stringify(meta.id)},"object":"chat.completion.chunk","created":${meta.created},"model":${JSON.stringify(meta.model)},"choices":[{"index":0,"delta":{`;
    this.start = start;
    this.prefix = `${start}"content":`;
    this.head = `${start}"role":"assistant","content":""${this.suffix}`;
    this.keepalive = setInterval(() => {
      this.open();
      this.write(': keepalive\n\n');
    }, keepaliveSeconds * 1000);
  }

  private open(): void {
    if (this.opened) return;
    this.opened = true;
    const raw = this.reply.raw;
    this.reply.hijack();
    raw.writeHead(200, {
      ...(this.reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    raw.socket?.setNoDelay(true);
    this.write(this.head);
  }

  private write(s: string): void {
    const raw = this.reply.raw;
    if (!raw.destroyed && !raw.writableEnded) raw.write(s);
  }

  token(t: string): void {
    clearInterval(this.keepalive);
    this.unsent += t;
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => {
      this.scheduled = false;
      // Ended or abandoned meanwhile: finish() and error() wrote what there was.
      if (!this.stopped) this.write(this.flush());
    });
  }

  /**
   * Tool calls as OpenAI streams them: per call a first delta with index, id, type and name
   * (arguments ""), then its arguments as string fragments. Text before them goes first.
   */
  toolCalls(calls: OpenAiToolCall[]): void {
    clearInterval(this.keepalive);
    if (this.stopped) return;
    let out = this.flush();
    for (const c of calls) {
      out += `${this.start}"tool_calls":${JSON.stringify([{ index: c.index, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }])}${this.suffix}`;
      for (const f of fragments(c.function.arguments)) out += `${this.start}"tool_calls":${JSON.stringify([{ index: c.index, function: { arguments: f } }])}${this.suffix}`;
    }
    this.write(out);
  }

  /** The role chunk when not sent yet, and the tokens not yet written, as one string. */
  private flush(): string {
    let out = '';
    if (!this.opened) {
      // open() writes the head itself; what follows goes out with it in one segment.
      this.reply.raw.cork();
      this.open();
      process.nextTick(() => this.reply.raw.uncork());
    }
    if (this.unsent !== '') {
      out = this.prefix + JSON.stringify(this.unsent) + this.suffix;
      this.unsent = '';
    }
    return out;
  }

  finish(reason: string, usage?: Record<string, number>): void {
    this.stop();
    const base = { id: this.meta.id, object: 'chat.completion.chunk', created: this.meta.created, model: this.meta.model };
    let out = this.flush();
    out += `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: reason }] })}\n\n`;
    if (usage) out += `data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`;
    out += 'data: [DONE]\n\n';
    this.end(out);
  }

  error(problem: HttpProblem): void {
    this.stop();
    const code = typeof problem.extensions.code === 'string' ? problem.extensions.code : 'cynodeai_internal_error';
    // The tokens the client has not seen yet come before the error, as they came before it.
    this.end(this.flush() + `data: ${JSON.stringify({ error: { message: problem.detail, type: 'cynodeai_error', param: null, code } })}\n\n`);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.keepalive);
  }

  private end(s: string): void {
    const raw = this.reply.raw;
    if (!raw.destroyed && !raw.writableEnded) raw.end(s);
  }
}
