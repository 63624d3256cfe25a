import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { MasterKey } from './master-key';

/**
 * Envelope encryption for secrets at rest the orchestrator must read back (node Worker API tokens,
 * the join PSK): every secret gets its own random AES-256-GCM data key; the data key is wrapped
 * (AES-256-GCM again) by a key-encryption key derived from the master key. Why this format, and
 * how connector credentials differ: docs/decisions/0004-vault-format.md.
 *
 * Sealed form: `v1.<kid>.<wrap iv>.<wrapped data key + tag>.<iv>.<ciphertext + tag>`, the binary
 * parts base64url. `kid` names the key-encryption key (first 8 hex of its SHA-256), so a secret
 * sealed under another master key is recognised as such instead of failing obscurely.
 *
 * `context` names the secret's place (`node:<id>:worker-token`, `system:node-psk`) and is bound
 * to both layers as additional authenticated data: a ciphertext copied into another row, or
 * another node's row, does not open there.
 */
export class Vault {
  private readonly kek: Buffer;
  /** Identifies the key-encryption key in every sealed value. */
  readonly kid: string;

  constructor(masterKey: MasterKey) {
    this.kek = Buffer.from(masterKey.derive('vault-kek'));
    this.kid = createHash('sha256').update(this.kek).digest('hex').slice(0, 8);
  }

  seal(plaintext: string, context: string): string {
    const aad = this.aad(context);
    const dataKey = randomBytes(KEY_BYTES);
    try {
      const wrapIv = randomBytes(IV_BYTES);
      const wrapped = encrypt(this.kek, wrapIv, dataKey, aad);
      const iv = randomBytes(IV_BYTES);
      const ciphertext = encrypt(dataKey, iv, Buffer.from(plaintext, 'utf8'), aad);
      return [VERSION, this.kid, ...[wrapIv, wrapped, iv, ciphertext].map((b) => b.toString('base64url'))].join('.');
    } finally {
      dataKey.fill(0); // best effort: the data key exists only while sealing
    }
  }

  /** The plaintext; throws VaultError when the value is malformed, tampered with, sealed for another context or under another master key. */
  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 6 || parts[0] !== VERSION) throw new VaultError(`not a sealed secret (expected ${VERSION}.<kid>.<4 base64url parts>)`);
    const [, kid, ...encoded] = parts as [string, string, string, string, string, string];
    if (kid !== this.kid) throw new VaultError(`sealed under another master key (key id ${kid}; this installation's is ${this.kid})`);
    const [wrapIv, wrapped, iv, ciphertext] = encoded.map(strictBase64url) as [Buffer, Buffer, Buffer, Buffer];
    if (wrapIv.length !== IV_BYTES || iv.length !== IV_BYTES || wrapped.length !== KEY_BYTES + TAG_BYTES || ciphertext.length < TAG_BYTES) {
      throw new VaultError('sealed secret has parts of the wrong length');
    }
    const aad = this.aad(context);
    let dataKey: Buffer | undefined;
    try {
      dataKey = decrypt(this.kek, wrapIv, wrapped, aad);
      return decrypt(dataKey, iv, ciphertext, aad).toString('utf8');
    } catch {
      // GCM says only "unable to authenticate"; which of the three it was cannot be told apart.
      throw new VaultError(`cannot open the sealed secret for "${context}": it was tampered with, or sealed for another context`);
    } finally {
      dataKey?.fill(0);
    }
  }

  private aad(context: string): Buffer {
    return Buffer.from(`cynode-vault:${VERSION}:${this.kid}:${context}`, 'utf8');
  }
}

export class VaultError extends Error {
  override readonly name = 'VaultError';
}

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

function encrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function decrypt(key: Buffer, iv: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
}

/**
 * Node's base64url decoder skips characters it does not know and ignores unused trailing bits,
 * so two different strings can decode to the same bytes; a sealed value must have exactly one
 * spelling, or an edited character could go unnoticed.
 */
function strictBase64url(s: string): Buffer {
  const bytes = Buffer.from(s, 'base64url');
  if (bytes.toString('base64url') !== s) throw new VaultError('sealed secret is not valid base64url');
  return bytes;
}
