import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MasterKey } from '../../server/vault/master-key';
import { Vault, VaultError } from '../../server/vault/envelope';

const keyOf = (fill: number) => MasterKey.fromBase64(Buffer.alloc(32, fill).toString('base64'));

describe('Vault (envelope encryption)', () => {
  const vault = new Vault(keyOf(1));
  const context = 'node:0d6f3c1e-6a43-4b59-8a55-6f0c2b7d9a10:worker-token';

  it('opens what it sealed, including empty and non-ASCII plaintexts', () => {
    for (const plaintext of ['s3cret-token', '', 'ünïcødé ✓ 🔑', 'x'.repeat(100_000)]) {
      expect(vault.open(vault.seal(plaintext, context), context)).toBe(plaintext);
    }
  });

  it('writes v1.<kid>.<four base64url parts> with the key id of the master key, and no plaintext', () => {
    const sealed = vault.seal('s3cret-token', context);
    const parts = sealed.split('.');
    expect(parts).toHaveLength(6);
    expect(parts[0]).toBe('v1');
    expect(parts[1]).toMatch(/^[0-9a-f]{8}$/);
    expect(parts[1]).toBe(vault.kid);
    for (const p of parts.slice(2)) expect(p).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('s3cret');
    // Another vault on the same master key (another gateway, a restart) has the same key id and opens it.
    const again = new Vault(keyOf(1));
    expect(again.kid).toBe(vault.kid);
    expect(again.open(sealed, context)).toBe('s3cret-token');
  });

  it('never seals the same plaintext the same way twice (fresh data key and IVs)', () => {
    const a = vault.seal('same', context).split('.');
    const b = vault.seal('same', context).split('.');
    for (const i of [2, 3, 4, 5]) expect(a[i]).not.toBe(b[i]);
  });

  it('refuses a change to any character of any part', () => {
    const sealed = vault.seal('s3cret-token', context);
    const parts = sealed.split('.');
    for (let p = 1; p < parts.length; p++) {
      const part = parts[p]!;
      for (let i = 0; i < part.length; i++) {
        const swapped = part[i] === 'A' ? 'B' : 'A';
        const tampered = [...parts];
        tampered[p] = part.slice(0, i) + swapped + part.slice(i + 1);
        expect(() => vault.open(tampered.join('.'), context), `part ${p}, char ${i}`).toThrow(VaultError);
      }
    }
  });

  it('refuses truncated, extended, reordered and foreign values', () => {
    const sealed = vault.seal('s3cret-token', context);
    const parts = sealed.split('.');
    const cases = [
      '',
      'plain text',
      parts.slice(0, 5).join('.'),
      [...parts, 'AAAA'].join('.'),
      ['v2', ...parts.slice(1)].join('.'),
      [parts[0], parts[1], parts[4], parts[5], parts[2], parts[3]].join('.'),
      [parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]!.slice(0, 10)].join('.'),
      [parts[0], parts[1], parts[2], parts[3], parts[4], parts[5] + '='].join('.'),
    ];
    for (const bad of cases) expect(() => vault.open(bad, context), bad).toThrow(VaultError);
    // A data key wrapped for one secret does not open another secret's ciphertext.
    const other = vault.seal('other-token', context).split('.');
    expect(() => vault.open([parts[0], parts[1], parts[2], parts[3], other[4], other[5]].join('.'), context)).toThrow(VaultError);
  });

  it('refuses to open under another context: a ciphertext cannot move to another row', () => {
    const sealed = vault.seal('s3cret-token', context);
    expect(() => vault.open(sealed, 'node:another-node:worker-token')).toThrow(/tampered with, or sealed for another context/);
    expect(() => vault.open(sealed, 'system:node-psk')).toThrow(VaultError);
    expect(() => vault.open(sealed, '')).toThrow(VaultError);
  });

  it('refuses to open under another master key, and says so', () => {
    const sealed = vault.seal('s3cret-token', context);
    const other = new Vault(MasterKey.fromBase64(randomBytes(32).toString('base64')));
    expect(other.kid).not.toBe(vault.kid);
    expect(() => other.open(sealed, context)).toThrow(VaultError);
    expect(() => other.open(sealed, context)).toThrow(/another master key/);
    // Even with the key id forged to match, the other key cannot unwrap the data key.
    const forged = sealed.replace(`.${vault.kid}.`, `.${other.kid}.`);
    expect(() => other.open(forged, context)).toThrow(VaultError);
  });

  it('keeps the secret out of its error messages', () => {
    const sealed = vault.seal('s3cret-token', context);
    try {
      vault.open(sealed, 'elsewhere');
      expect.unreachable();
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('s3cret');
    }
  });
});
