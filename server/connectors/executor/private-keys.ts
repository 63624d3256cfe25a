import { calculateJwkThumbprint, exportJWK, flattenedDecrypt, generateKeyPair, importJWK, type FlattenedJWE } from 'jose';
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

type PrivateKey = Awaited<ReturnType<typeof importJWK>>;

/** The executor's private keys, by kid, opened from their sealed form with the executor's vault. */
export class KeyRing {
  private readonly keys = new Map<string, PrivateKey>();
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
      this.keys.set(record.kid, await importJWK(jwk, JWE_ALG));
    }
  }

  /** A new pair: its private half sealed, ready to store; the ring holds it from now on. */
  async generate(): Promise<ExecutorKeyRecord> {
    const { publicKey, privateKey } = await generateKeyPair(JWE_ALG, { crv: 'P-256', extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    const sealed = this.vault.seal(JSON.stringify(await exportJWK(privateKey)), privateKeyContext(kid));
    this.keys.set(kid, privateKey);
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
      const jwe = JSON.parse(credential.jwe) as FlattenedJWE;
      const { plaintext } = await flattenedDecrypt(
        { ...jwe, aad: Buffer.from(bindingAad(credential)).toString('base64url') },
        key,
        { keyManagementAlgorithms: [JWE_ALG], contentEncryptionAlgorithms: [JWE_ENC] },
      );
      return JSON.parse(new TextDecoder().decode(plaintext)) as CredentialSecret;
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

function cannotOpen(): ConnectorError {
  return new ConnectorError(
    'permanent',
    'The stored credential cannot be opened: it belongs to another connector or credential version, or was sealed to a key the executor does not hold',
  );
}
