import { describe, expect, it } from 'vitest';
import { redact } from '../../server/redaction/redaction';
import { CATALOGUE, goToJs } from '../../server/redaction/gitleaks';
import { lookAlikes, secretSamples, type SecretSample } from '../support/secret-corpus';

/** Whether any 12 characters of `secret` in a row (all of it when shorter) are still in `text`. */
function survives(text: string, secret: string): boolean {
  const w = Math.min(12, secret.length);
  for (let i = 0; i + w <= secret.length; i++) if (text.includes(secret.slice(i, i + w))) return true;
  return false;
}

describe('redaction on a corpus of real-format credentials', () => {
  const samples = secretSamples();
  const negatives = lookAlikes();

  it('is wide: at least 30 kinds over every category, several samples each, and 100 look-alikes', () => {
    const kinds = new Map<string, number>();
    for (const s of samples) kinds.set(s.kind, (kinds.get(s.kind) ?? 0) + 1);
    expect(kinds.size).toBeGreaterThanOrEqual(30);
    expect(Math.min(...kinds.values())).toBeGreaterThanOrEqual(5);
    expect(new Set(samples.map((s) => s.category))).toEqual(
      new Set(['code host', 'cloud', 'AI API', 'chat bot', 'mail and SMS', 'payment', 'package registry', 'token', 'private key', 'connection string', 'password']),
    );
    expect(negatives.length).toBeGreaterThanOrEqual(100);
  });

  it('catches at least 99% of the credentials, leaving no part of them', async () => {
    // Each alone, as a message or a prompt comes.
    const out = await Promise.all(samples.map((s) => redact(s.text)));
    const missed: SecretSample[] = samples.filter((s, i) => s.secrets.some((secret) => survives(out[i]!.text, secret)));
    const recall = 1 - missed.length / samples.length;
    expect({ recall: recall >= 0.99, missed: missed.map((m) => `${m.kind}: ${m.text}`) }).toEqual({ recall: true, missed: expect.any(Array) });
    // Each kind is caught at least most of the time: no provider is left to chance.
    for (const kind of new Set(samples.map((s) => s.kind))) {
      const ofKind = samples.filter((s) => s.kind === kind);
      expect(ofKind.filter((s) => missed.includes(s)).length, kind).toBeLessThanOrEqual(ofKind.length / 5);
    }
  });

  it('changes at most 1% of the look-alikes (UUIDs, hashes, image data, prose, code, URLs)', async () => {
    const out = await Promise.all(negatives.map((t) => redact(t)));
    const changed = negatives.filter((t, i) => out[i]!.text !== t);
    expect({ rate: changed.length / negatives.length <= 0.01, changed }).toEqual({ rate: true, changed: expect.any(Array) });
  });
});

describe('the gitleaks catalogue in JavaScript', () => {
  it('keeps nearly every rule of the catalogue', () => {
    expect(CATALOGUE.length).toBeGreaterThanOrEqual(200);
  });

  it('spells out case-insensitive parts, and only those', () => {
    const re = new RegExp(goToJs('(?i)ab(?-i:Cd)[a-c_-]'));
    expect(['abCdb', 'ABCd_', 'aBCdB', 'abCd-'].every((s) => re.test(s))).toBe(true);
    expect(re.test('abcdb')).toBe(false);
    const inner = new RegExp(`^${goToJs('x(?i:y)z')}$`);
    expect([inner.test('xYz'), inner.test('XYz'), inner.test('xyZ')]).toEqual([true, false, false]);
    const mid = new RegExp(`^${goToJs('p8e-(?i)[a-z0-9]{2}')}$`);
    expect([mid.test('p8e-Z9'), mid.test('P8E-z9')]).toEqual([true, false]);
  });

  it('reads Go classes, dot-all groups, \\z and named groups', () => {
    expect(new RegExp(`^${goToJs('[[:alnum:]]{3}')}$`).test('a1Z')).toBe(true);
    expect(new RegExp(goToJs('a(?s:.)b')).test('a\nb')).toBe(true);
    expect(new RegExp(goToJs('a.b')).test('a\nb')).toBe(false);
    expect(new RegExp(goToJs('end\\z')).test('the end')).toBe(true);
    expect(new RegExp(goToJs('(?P<x>a)(b)')).exec('ab')?.[2]).toBe('b');
  });
});
