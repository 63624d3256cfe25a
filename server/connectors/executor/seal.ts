import { FlattenedEncrypt, importJWK } from 'jose';
import type { CredentialSecret } from '../types/contract';
import type { CredentialBinding } from '../executor-api';
import { bindingAad, JWE_ALG, JWE_ENC } from './protocol';

/**
 * Seals a credential to an executor public key: JWE (flattened JSON serialization), ECDH-ES+A256KW
 * key agreement, A256GCM content encryption, the key id in the protected header and the binding
 * as additional authenticated data. Needs only the public key: the gateway seals with it.
 */
export async function sealCredentialTo(kid: string, publicJwk: JsonWebKey, secret: CredentialSecret, binding: CredentialBinding): Promise<string> {
  const key = await importJWK(publicJwk as Record<string, unknown>, JWE_ALG);
  const jwe = await new FlattenedEncrypt(new TextEncoder().encode(JSON.stringify(secret)))
    .setProtectedHeader({ alg: JWE_ALG, enc: JWE_ENC, kid })
    .setAdditionalAuthenticatedData(bindingAad(binding))
    .encrypt(key);
  return JSON.stringify(jwe);
}
