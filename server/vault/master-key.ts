import { randomBytes, hkdfSync } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The installation's master key: 32 bytes from `CYNODE_MASTER_KEY` (base64), the OS keychain on
 * the desktop (main/shell/keychain.ts hands it in as the configured key), or a 0600 file in the
 * data directory created on first run. Every other key is derived from it or wrapped by it; it
 * never leaves the process (docs/decisions/0004-vault-format.md).
 */
export class MasterKey {
  private constructor(private readonly key: Buffer) {}

  static fromBase64(value: string): MasterKey {
    const key = Buffer.from(value, 'base64');
    if (key.length !== 32) throw new Error('CYNODE_MASTER_KEY must be 32 bytes, base64-encoded');
    return new MasterKey(key);
  }

  /** Reads the key file (and makes it 0600, as a copy restored by hand may not be), or creates it. */
  static async fromFile(path: string): Promise<MasterKey> {
    try {
      const key = MasterKey.fromBase64((await readFile(path, 'utf8')).trim());
      await chmod(path, 0o600);
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const key = randomBytes(32);
    // `wx`: two processes starting at once must not overwrite each other's key.
    try {
      await writeFile(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return MasterKey.fromFile(path);
      throw err;
    }
    await chmod(path, 0o600);
    return new MasterKey(key);
  }

  /** A purpose-bound subkey (HKDF-SHA256), e.g. for signing access tokens. */
  derive(purpose: string, length = 32): Uint8Array {
    return new Uint8Array(hkdfSync('sha256', this.key, Buffer.alloc(0), `cynode:${purpose}`, length));
  }
}
