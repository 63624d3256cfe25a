import { randomBytes } from 'node:crypto';
import { FlattenedEncrypt, flattenedDecrypt, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { decryptJwe, KeyRing } from '../../server/connectors/executor/private-keys';
import { bindingAad, JWE_ALG, JWE_ENC } from '../../server/connectors/executor/protocol';
import { sealCredentialTo } from '../../server/connectors/executor/seal';
import type { ExecutorKeyRecord } from '../../server/connectors/executor/protocol';

// The executor opens credentials with node:crypto (private-keys.ts) while the gateway seals them
// with jose: every form jose seals must open, to the same plaintext jose reads, and a change to
// any part of the JWE or its binding must not.

const SECRET = { type: 'bearer_token', token: 'jwe-open-token-5f1c9a' } as const;
const BINDING = { instanceId: '5e0b3b1e-0d7e-4c55-9a43-3d6f3c0b9a11', credentialId: '0a7f6f7e-61f4-4a5a-8f2e-2b1f9d3c4e55', version: 3 };
const b64u = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

async function ring(): Promise<{ ring: KeyRing; record: ExecutorKeyRecord; vaultKey: string }> {
  const vaultKey = randomBytes(32).toString('base64');
  const r = new KeyRing(vaultKey);
  return { ring: r, record: await r.generate(), vaultKey };
}

const sealed = (record: ExecutorKeyRecord, binding = BINDING) => sealCredentialTo(record.kid, record.publicJwk, SECRET, binding);

/** The private key as the executor loads it, for decryptJwe itself. */
async function privateKeyOf(record: ExecutorKeyRecord, vaultKey: string) {
  const { Vault } = await import('../../server/vault/envelope');
  const { MasterKey } = await import('../../server/vault/master-key');
  const { privateKeyContext } = await import('../../server/connectors/executor/protocol');
  const { createPrivateKey } = await import('node:crypto');
  const jwk = JSON.parse(new Vault(MasterKey.fromBase64(vaultKey)).open(record.privateKeySealed, privateKeyContext(record.kid))) as Record<string, unknown>;
  return { node: createPrivateKey({ key: jwk as never, format: 'jwk' }), jose: await importJWK(jwk, JWE_ALG) };
}

describe('opening sealed credentials in the executor', () => {
  it('opens what jose sealed, in the ring that made the key and in one that loaded it from its sealed form', async () => {
    const { ring: maker, record, vaultKey } = await ring();
    const jwe = await sealed(record);
    expect(await maker.open({ ...BINDING, jwe })).toEqual(SECRET);
    const loader = new KeyRing(vaultKey);
    await loader.load([record]);
    expect(await loader.open({ ...BINDING, jwe })).toEqual(SECRET);
  });

  it('reads the same plaintext as jose, with and without party info in the key agreement', async () => {
    const { record, vaultKey } = await ring();
    const keys = await privateKeyOf(record, vaultKey);
    const publicKey = await importJWK(record.publicJwk as Record<string, unknown>, JWE_ALG);
    const plaintext = new TextEncoder().encode(JSON.stringify(SECRET));
    for (const parties of [undefined, { apu: new TextEncoder().encode('CyNode gateway'), apv: new TextEncoder().encode('executor') }]) {
      const enc = new FlattenedEncrypt(plaintext).setProtectedHeader({ alg: JWE_ALG, enc: JWE_ENC, kid: record.kid }).setAdditionalAuthenticatedData(bindingAad(BINDING));
      if (parties) enc.setKeyManagementParameters(parties);
      const jwe = await enc.encrypt(publicKey);
      const byJose = await flattenedDecrypt(jwe, keys.jose, { keyManagementAlgorithms: [JWE_ALG], contentEncryptionAlgorithms: [JWE_ENC] });
      expect(Buffer.from(byJose.plaintext)).toEqual(decryptJwe(jwe, bindingAad(BINDING), keys.node));
    }
  });

  it('refuses a credential moved to another binding, and any changed part of the JWE', async () => {
    const { ring: r, record } = await ring();
    const jwe = JSON.parse(await sealed(record)) as Record<string, string>;
    const header = JSON.parse(Buffer.from(jwe.protected!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const other = JSON.parse(await sealed((await ring()).record)) as Record<string, string>;
    const otherEpk = (JSON.parse(Buffer.from(other.protected!, 'base64url').toString('utf8')) as { epk: unknown }).epk;
    const flip = (v: string) => Buffer.from(Buffer.from(v, 'base64url').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64url');
    const withHeader = (h: Record<string, unknown>) => ({ ...jwe, protected: b64u(JSON.stringify(h)) });
    const refused = async (changed: unknown, binding = BINDING) => {
      await expect(r.open({ ...binding, jwe: JSON.stringify(changed) })).rejects.toThrow(/cannot be opened/);
    };
    await refused(jwe, { ...BINDING, version: 4 });
    await refused(jwe, { ...BINDING, instanceId: '9c7a8a77-2d1b-4a0e-8f0f-6b3f1e2d4c10' });
    for (const part of ['ciphertext', 'tag', 'iv', 'encrypted_key'] as const) await refused({ ...jwe, [part]: flip(jwe[part]!) });
    await refused(withHeader({ ...header, epk: otherEpk }));
    await refused(withHeader({ ...header, alg: 'ECDH-ES' }));
    await refused(withHeader({ ...header, enc: 'A128GCM' }));
    await refused(withHeader({ ...header, zip: 'DEF' }));
    // A point off the curve (x and y of a valid key, y changed) never reaches the key agreement.
    const epk = header.epk as { x: string; y: string };
    await refused(withHeader({ ...header, epk: { ...(header.epk as object), y: flip(epk.y) } }));
    await refused({ ...jwe, header: { kid: record.kid } });
  });
});
