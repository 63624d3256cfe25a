import { createHash, timingSafeEqual } from 'node:crypto';

/** Longer than any token this system issues; a longer header is refused unread. */
const MAX_TOKEN_CHARS = 4096;

/**
 * The credential of an `Authorization: Bearer <token>` header, or null: the one parser of the
 * gateway (access tokens, API keys), the control plane (node tokens) and the Worker API
 * (the orchestrator's token).
 */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  return token !== undefined && token.length <= MAX_TOKEN_CHARS ? token : null;
}

/**
 * Whether a presented secret is the expected one, in time that depends neither on where they
 * differ nor on the presented one's length (both are hashed to the same size first).
 */
export function sameSecret(presented: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(presented), digest(expected));
}
