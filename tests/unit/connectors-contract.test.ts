import { describe, expect, it } from 'vitest';
import { ConnectorError, checkAgainst, credentialSchemas } from '../../server/connectors/types/contract';
import { slackFailure } from '../../server/connectors/types/slack';
import { credentialHeaders, failureForStatus, retryAfterMs, urlWithin } from '../../server/connectors/web-request';

function failureOf(run: () => unknown): ConnectorError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectorError);
    return e as ConnectorError;
  }
  throw new Error('expected a failure');
}

describe('connector request helpers', () => {
  it('joins paths below the base URL and keeps them there', () => {
    const base = new URL('https://api.example.com/v2');
    expect(urlWithin(base, '/users/7', { q: 'a&b', n: [1, 2], skip: undefined }).href).toBe('https://api.example.com/v2/users/7?q=a%26b&n=1&n=2');
    expect(urlWithin(base, 'users').href).toBe('https://api.example.com/v2/users');
    expect(urlWithin(new URL('https://api.example.com/'), '').href).toBe('https://api.example.com/');
    expect(urlWithin(base, 'a b/ü').pathname).toBe('/v2/a%20b/%C3%BC');
    for (const path of ['..', '../v1', 'x/../../y', '%2E%2E/y', 'a%2Fb', 'a%5cb', '//other.example/', 'a\\b', 'a?b', 'a#b', 'a\tb', 'a/%00']) {
      expect(failureOf(() => urlWithin(base, path)).failure).toBe('validation_error');
    }
  });

  it('classes HTTP statuses', () => {
    const cls = (status: number, headers = {}) => failureForStatus(status, headers)?.failure ?? 'ok';
    expect([200, 201, 204, 302].map((s) => cls(s))).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect([429, 408, 500, 502, 503, 504].map((s) => cls(s))).toEqual(Array(6).fill('transient'));
    expect([401, 403].map((s) => cls(s))).toEqual(['permanent', 'permanent']);
    expect(cls(403, { 'retry-after': '60' })).toBe('transient');
    expect([400, 413, 422].map((s) => cls(s))).toEqual(Array(3).fill('validation_error'));
    expect([404, 409, 410, 501].map((s) => cls(s))).toEqual(Array(4).fill('permanent'));
    expect(failureForStatus(429, { 'retry-after': '7' })).toMatchObject({ providerStatus: 429, retryAfterMs: 7000 });
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    expect(retryAfterMs(inAMinute)).toBeGreaterThan(55_000);
  });

  it('shapes each credential type into its header', () => {
    expect(credentialHeaders({ type: 'bearer_token', token: 't' })).toEqual({ authorization: 'Bearer t' });
    expect(credentialHeaders({ type: 'bearer_token', token: 't' }, { bearerScheme: 'Bot' })).toEqual({ authorization: 'Bot t' });
    expect(credentialHeaders({ type: 'basic', username: 'u', password: 'p' })).toEqual({ authorization: 'Basic dTpw' });
    expect(credentialHeaders({ type: 'custom_header', name: 'X-Token', value: 'v' })).toEqual({ 'x-token': 'v' });
    expect(credentialHeaders({ type: 'api_key', key: 'k' })).toEqual({ 'x-api-key': 'k' });
    expect(credentialHeaders(null)).toEqual({});
    expect(failureOf(() => credentialHeaders({ type: 'custom_header', name: 'Host', value: 'evil' })).failure).toBe('validation_error');
    expect(failureOf(() => credentialHeaders({ type: 'password', password: 'p' })).failure).toBe('validation_error');
  });

  it('validates submitted credentials without echoing them', () => {
    checkAgainst(credentialSchemas.bearer_token, { token: 'abc' }, 'The credential');
    checkAgainst(credentialSchemas.custom_header, { name: 'X-Key', value: 'v' }, 'The credential');
    const bad = failureOf(() => checkAgainst(credentialSchemas.bearer_token, { token: 'abc\r\nX-Evil: 1' }, 'The credential'));
    expect(bad.failure).toBe('validation_error');
    expect(bad.message).toContain('/token');
    expect(bad.message).not.toContain('abc');
    expect(failureOf(() => checkAgainst(credentialSchemas.basic, { username: 'a:b', password: 'p' }, 'The credential')).failure).toBe('validation_error');
    expect(failureOf(() => checkAgainst(credentialSchemas.custom_header, { name: 'Bad Name', value: 'v' }, 'The credential')).failure).toBe('validation_error');
    expect(failureOf(() => checkAgainst(credentialSchemas.password, { password: 'p', extra: 1 }, 'The credential')).failure).toBe('validation_error');
  });

  it("classes Slack's error codes and never repeats an unexpected one", () => {
    expect(slackFailure('invalid_auth').failure).toBe('permanent');
    expect(slackFailure('ratelimited').failure).toBe('transient');
    expect(slackFailure('channel_not_found').failure).toBe('validation_error');
    expect(slackFailure('something_new').failure).toBe('permanent');
    expect(slackFailure('<script>x</script>').message).toContain('unknown_error');
  });
});
