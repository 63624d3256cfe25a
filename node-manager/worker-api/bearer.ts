import { createHash, timingSafeEqual } from 'node:crypto';

/** The credential of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
  return match?.[1] ?? null;
}

/**
 * Compares a presented token with the expected one in time that does not depend on where they
 * differ, nor on the presented token's length (both are hashed to the same size first).
 */
export function tokensMatch(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
