import { createHash, randomBytes } from 'node:crypto';

export const REFRESH_TOKEN_PREFIX = 'cyr_';
export const API_KEY_PREFIX = 'cyk_';

/** Opaque, high-entropy secrets: only their SHA-256 is stored, which is enough at 256 bits. */
export function newOpaqueToken(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** For answers that carry a secret: neither a browser nor a proxy may keep a copy. */
export const NO_STORE = { 'cache-control': 'no-store' } as const;

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
