/**
 * Bounded capture of one output stream: keeps the first `capBytes`
 * bytes, counts the rest, and renders text that never ends in half a character.
 */
export class OutputCapture {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private dropped = false;

  constructor(private readonly capBytes: number) {}

  push(chunk: Buffer): void {
    if (this.kept >= this.capBytes) {
      if (chunk.length > 0) this.dropped = true;
      return;
    }
    const room = this.capBytes - this.kept;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (chunk.length > room) this.dropped = true;
    // Copied: the caller's buffer may be reused once push returns.
    this.chunks.push(Buffer.from(part));
    this.kept += part.length;
  }

  get truncated(): boolean {
    return this.dropped;
  }

  text(): string {
    const bytes = Buffer.concat(this.chunks, this.kept);
    // Only a cut we made is repaired; bytes the program itself wrote are decoded as they are.
    return (this.dropped ? bytes.subarray(0, utf8Boundary(bytes)) : bytes).toString('utf8');
  }
}

/**
 * The length of `bytes` without a trailing incomplete UTF-8 sequence: where the last character
 * starts if it does not fit, else the whole length.
 */
export function utf8Boundary(bytes: Uint8Array): number {
  const end = bytes.length;
  // A character is at most 4 bytes, so its lead byte is among the last 4.
  for (let i = end - 1; i >= 0 && i >= end - 4; i--) {
    const b = bytes[i]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + need > end ? i : end;
  }
  return end;
}
