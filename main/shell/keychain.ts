// The desktop's master key lives in the OS keychain (macOS Keychain, Windows Credential Manager,
// the Secret Service on Linux) through @napi-rs/keyring. When no keychain answers, the server's
// 0600 key file in the data folder is used instead, exactly as headless.
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AsyncEntry } from '@napi-rs/keyring';

export const KEYCHAIN_SERVICE = 'CyNode';

/** One keychain item: what the logic needs of @napi-rs/keyring's AsyncEntry (tests pass a fake). */
export interface KeychainItem {
  getPassword(): Promise<string | null | undefined>;
  setPassword(value: string): Promise<void>;
}
export type Keychain = (service: string, account: string) => KeychainItem;

/** The real OS keychain. */
export const osKeychain: Keychain = (service, account) => new AsyncEntry(service, account);

/** The keychain item of one data folder: two installations on one machine never share a key. */
export function keychainAccount(dataDir: string): string {
  return `master-key ${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16)}`;
}

/** Non-secret marker in the data folder saying the key is in the keychain (and which key). */
export const keychainMarker = (dataDir: string) => join(dataDir, 'master.key.keychain');
const keyFile = (dataDir: string) => join(dataDir, 'master.key');

const fingerprint = (key: string) => createHash('sha256').update(`cynode-master-key-fingerprint:${key}`).digest('hex').slice(0, 16);

function validKey(value: string | null | undefined): value is string {
  return typeof value === 'string' && Buffer.from(value, 'base64').length === 32 && Buffer.from(value, 'base64').toString('base64') === value;
}

export class KeychainError extends Error {}

export interface DesktopMasterKey {
  /** base64 key for ServerConfig.masterKey; undefined: the server reads (or creates) its key file. */
  masterKey: string | undefined;
  source: 'keychain' | 'file';
  /** Why the key file is used (no keychain answered, or the folder already had one). */
  reason?: string;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the keychain did not answer ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The master key of the data folder `dataDir`:
 * - the folder says its key is in the keychain (marker file): read it there; if the keychain does
 *   not answer or lost it, fail with the reason (a new key would make the stored secrets unreadable);
 * - the folder already has a key file (e.g. it was used headless): keep using the file;
 * - a new folder: create a key in the keychain, read it back, write the marker; if no keychain
 *   answers, fall back to the key file the server creates.
 */
export async function desktopMasterKey(dataDir: string, opts: { keychain?: Keychain; timeoutMs?: number } = {}): Promise<DesktopMasterKey> {
  const keychain = opts.keychain ?? osKeychain;
  const ms = opts.timeoutMs ?? 5000;
  const account = keychainAccount(dataDir);
  const marker = keychainMarker(dataDir);
  const describe = `the OS keychain (service "${KEYCHAIN_SERVICE}", account "${account}")`;

  let expected: string | undefined;
  try {
    expected = (JSON.parse(await readFile(marker, 'utf8')) as { fingerprint?: string }).fingerprint;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new KeychainError(`${marker} is unreadable: ${(err as Error).message}`);
  }

  if (expected !== undefined) {
    let stored: string | null | undefined;
    try {
      stored = await withTimeout(keychain(KEYCHAIN_SERVICE, account).getPassword(), ms, 'a read');
    } catch (err) {
      throw new KeychainError(`the master key of ${dataDir} is in ${describe}, which cannot be read (${(err as Error).message}); unlock the keychain, or set CYNODE_MASTER_KEY`);
    }
    if (!validKey(stored)) throw new KeychainError(`the master key of ${dataDir} is missing from ${describe}; restore it, or set CYNODE_MASTER_KEY`);
    if (fingerprint(stored) !== expected) throw new KeychainError(`${describe} holds a different master key than the one ${dataDir} was created with`);
    return { masterKey: stored, source: 'keychain' };
  }

  if (await exists(keyFile(dataDir))) return { masterKey: undefined, source: 'file', reason: 'the data folder already has a key file' };

  try {
    const item = keychain(KEYCHAIN_SERVICE, account);
    let key = await withTimeout(item.getPassword(), ms, 'a read');
    if (!validKey(key)) {
      key = randomBytes(32).toString('base64');
      await withTimeout(item.setPassword(key), ms, 'a write');
      // Trust the keychain only once it gives the key back.
      const back = await withTimeout(keychain(KEYCHAIN_SERVICE, account).getPassword(), ms, 'a read');
      if (back !== key) throw new Error('it did not give back the key just stored');
    }
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await writeFile(marker, JSON.stringify({ service: KEYCHAIN_SERVICE, account, fingerprint: fingerprint(key) }) + '\n', { mode: 0o600 });
    return { masterKey: key, source: 'keychain' };
  } catch (err) {
    await rm(marker, { force: true }).catch(() => {});
    return { masterKey: undefined, source: 'file', reason: `no keychain answered: ${(err as Error).message}` };
  }
}
