import { createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, KeyObject, type JsonWebKey as NodeJwk } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { MasterKey } from '../../vault/master-key';
import { Vault } from '../../vault/envelope';
import type { CredentialSecret } from '../types/contract';
import { ConnectorError } from '../types/contract';
import type { SealedCredential } from '../executor-api';
import { bindingAad, JWE_ALG, JWE_ENC, kidOfJwe, privateKeyContext, type ExecutorKeyRecord } from './protocol';
import { sealCredentialTo } from './seal';

/*
 * The one module that opens the executor's private keys, and with them connector credentials.
 * Only the executor process loads it: a dependency rule (.dependency-cruiser.cjs,
 * `executor-private-keys-only-in-executor`) keeps it out of every other module graph.
 */

/** The executor's private keys, by kid, opened from their sealed form with the executor's vault. */
export class KeyRing {
  private readonly keys = new Map<string, KeyObject>();
  private vault: Vault;

  constructor(vaultKey: string) {
    this.vault = new Vault(MasterKey.fromBase64(vaultKey));
  }

  has(kid: string): boolean {
    return this.keys.has(kid);
  }

  /** Opens every stored key not held yet; a key that does not open stops the start with the reason (never the key). */
  async load(records: readonly ExecutorKeyRecord[]): Promise<void> {
    for (const record of records) {
      if (this.keys.has(record.kid)) continue;
      const jwk = JSON.parse(this.vault.open(record.privateKeySealed, privateKeyContext(record.kid))) as Record<string, unknown>;
      this.keys.set(record.kid, privateKeyOf(jwk));
    }
  }

  /** A new pair: its private half sealed, ready to store; the ring holds it from now on. */
  async generate(): Promise<ExecutorKeyRecord> {
    const { publicKey, privateKey } = await generateKeyPair(JWE_ALG, { crv: 'P-256', extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    const sealed = this.vault.seal(JSON.stringify(await exportJWK(privateKey)), privateKeyContext(kid));
    this.keys.set(kid, KeyObject.from(privateKey as CryptoKey));
    return { kid, publicJwk: { ...publicJwk, kid, alg: JWE_ALG, use: 'enc' } as JsonWebKey, privateKeySealed: sealed };
  }

  /**
   * The plaintext of a credential sealed for exactly this binding. The binding comes from the call,
   * not from the JWE: a JWE copied into another row fails authentication here.
   */
  async open(credential: SealedCredential): Promise<CredentialSecret> {
    const kid = kidOfJwe(credential.jwe);
    const key = kid ? this.keys.get(kid) : undefined;
    if (!key) throw cannotOpen();
    try {
      const plaintext = decryptJwe(JSON.parse(credential.jwe) as unknown, bindingAad(credential), key);
      try {
        return JSON.parse(plaintext.toString('utf8')) as CredentialSecret;
      } finally {
        plaintext.fill(0);
      }
    } catch {
      throw cannotOpen();
    }
  }

  /** The credential sealed again, for the same binding, to the public half of `kid`. */
  async rewrap(credential: SealedCredential, kid: string, publicJwk: JsonWebKey): Promise<string> {
    const secret = await this.open(credential);
    return sealCredentialTo(kid, publicJwk, secret, credential);
  }

  /** The given stored keys sealed under another vault key (master key rotation); the ring switches to it. */
  async reseal(records: readonly ExecutorKeyRecord[], vaultKey: string): Promise<ExecutorKeyRecord[]> {
    const next = new Vault(MasterKey.fromBase64(vaultKey));
    // Each opens under the current vault first: a key sealed under neither stops the rotation.
    const out = records.map((r) => ({ ...r, privateKeySealed: next.seal(this.vault.open(r.privateKeySealed, privateKeyContext(r.kid)), privateKeyContext(r.kid)) }));
    this.vault = next;
    return out;
  }
}

function privateKeyOf(jwk: Record<string, unknown>): KeyObject {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') throw new Error('an executor key is not a P-256 private key');
  return createPrivateKey({ key: jwk as NodeJwk, format: 'jwk' });
}

const isText = (v: unknown): v is string => typeof v === 'string';

/**
 * Opens one of our flattened JWEs (RFC 7516 §7.2.2) with ECDH-ES+A256KW key agreement and A256GCM
 * content encryption (RFC 7518 §4.6, §4.4, §5.3), as jose's flattenedDecrypt does, on node:crypto:
 * jose runs each of its seven steps as a WebCrypto job on the thread pool, about half a
 * millisecond per call idle and several under load (docs/decisions/0006-connector-call-overhead.md).
 * jose still seals (seal.ts); tests/unit/connector-jwe-open.test.ts opens what it seals and refuses
 * each tampered part. `aad` is the binding from the call, never the one stored in the JWE.
 */
export function decryptJwe(jwe: unknown, aad: Uint8Array, key: KeyObject): Buffer {
  if (typeof jwe !== 'object' || jwe === null) throw new Error('not a JWE');
  const { protected: protectedB64, encrypted_key: encryptedKey, iv, ciphertext, tag } = jwe as Record<string, unknown>;
  // We seal every header parameter into the protected header; anything unprotected is not ours.
  if ('header' in jwe || 'unprotected' in jwe || 'recipients' in jwe) throw new Error('unexpected JWE members');
  if (!isText(protectedB64) || !isText(encryptedKey) || !isText(iv) || !isText(ciphertext) || !isText(tag)) throw new Error('incomplete JWE');
  const header = JSON.parse(Buffer.from(protectedB64, 'base64url').toString('utf8')) as Record<string, unknown>;
  if (header.alg !== JWE_ALG || header.enc !== JWE_ENC || 'zip' in header || 'crit' in header) throw new Error('unexpected JWE algorithms');
  const epk = header.epk as Record<string, unknown> | undefined;
  if (!epk || epk.kty !== 'EC' || epk.crv !== 'P-256' || !isText(epk.x) || !isText(epk.y) || 'd' in epk) throw new Error('unexpected ephemeral key');
  // node:crypto refuses a point that is not on the curve here.
  const ephemeral = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: epk.x, y: epk.y }, format: 'jwk' });
  const kek = concatKdf(diffieHellman({ privateKey: key, publicKey: ephemeral }), header.apu, header.apv);
  const unwrap = createDecipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
  const cek = Buffer.concat([unwrap.update(Buffer.from(encryptedKey, 'base64url')), unwrap.final()]);
  const ivBytes = Buffer.from(iv, 'base64url');
  const tagBytes = Buffer.from(tag, 'base64url');
  if (cek.length !== 32 || ivBytes.length !== 12 || tagBytes.length !== 16) throw new Error('unexpected JWE sizes');
  const gcm = createDecipheriv('aes-256-gcm', cek, ivBytes, { authTagLength: 16 });
  kek.fill(0);
  cek.fill(0);
  // RFC 7516 §5.2 step 14: ASCII(BASE64URL(protected header) || '.' || BASE64URL(JWE AAD)).
  gcm.setAAD(Buffer.from(`${protectedB64}.${Buffer.from(aad).toString('base64url')}`, 'ascii'));
  gcm.setAuthTag(tagBytes);
  return Buffer.concat([gcm.update(Buffer.from(ciphertext, 'base64url')), gcm.final()]);
}

/** RFC 7518 §4.6.2: the Concat KDF (NIST SP 800-56A, SHA-256) for a 256-bit A256KW key; one round suffices. */
function concatKdf(z: Buffer, apu: unknown, apv: unknown): Buffer {
  const field = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const party = (v: unknown) => {
    if (v === undefined) return Buffer.alloc(0);
    if (!isText(v)) throw new Error('unexpected JWE party info');
    return Buffer.from(v, 'base64url');
  };
  const round = Buffer.from([0, 0, 0, 1]);
  const keyBits = Buffer.from([0, 0, 1, 0]);
  return createHash('sha256')
    .update(Buffer.concat([round, z, field(Buffer.from(JWE_ALG, 'ascii')), field(party(apu)), field(party(apv)), keyBits]))
    .digest();
}

function cannotOpen(): ConnectorError {
  return new ConnectorError(
    'permanent',
    'The stored credential cannot be opened: it belongs to another connector or credential version, or was sealed to a key the executor does not hold',
  );
}
