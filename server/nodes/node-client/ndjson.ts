/**
 * Splits NDJSON as it arrives into its lines: complete lines come out of push(), the unfinished
 * tail waits for the next chunk, and end() gives a last line that had no newline. Blank lines
 * are skipped (a node may send them as keep-alives).
 */
export class NdjsonLines {
  private buffered = '';

  push(chunk: string): string[] {
    this.buffered += chunk;
    const lines: string[] = [];
    let from = 0;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n', from)) {
      const line = this.buffered.slice(from, nl);
      from = nl + 1;
      if (line.trim() !== '') lines.push(line);
    }
    this.buffered = this.buffered.slice(from);
    return lines;
  }

  /** Characters of a line not yet complete: a caller bounds a line's length with it. */
  get pending(): number {
    return this.buffered.length;
  }

  end(): string | null {
    const rest = this.buffered;
    this.buffered = '';
    return rest.trim() === '' ? null : rest;
  }
}

/** The lines of an NDJSON body read to its end (a pull's progress), decoded as UTF-8. */
export async function* ndjsonLines(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const lines = new NdjsonLines();
  for await (const chunk of body) yield* lines.push(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
  yield* lines.push(decoder.decode());
  const last = lines.end();
  if (last !== null) yield last;
}
