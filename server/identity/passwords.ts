import { hash, verify } from '@node-rs/argon2';

const ARGON2ID = 2; // Algorithm.Argon2id (a const enum, which isolatedModules cannot read)

// OWASP's Argon2id baseline (19 MiB, 2 passes): about 50 ms a hash on a 2-core machine, which
// keeps sign-in responsive while making offline guessing expensive.
const PARAMS = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1, outputLen: 32 } as const;

export const MIN_PASSWORD_LENGTH = 8;

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  try {
    return await verify(phc, password);
  } catch {
    return false;
  }
}

// Verifying against this when the handle is unknown makes "no such user" cost the same time
// as "wrong password", so timing does not reveal which handles exist.
let dummy: Promise<string> | undefined;
export async function burnVerification(password: string): Promise<void> {
  dummy ??= hashPassword('cynode-no-such-user');
  await verifyPassword(await dummy, password);
}
