import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EgressGuard, egressFromEnvironment, parseAllowList } from '../../server/connectors/egress';
import {
  ConnectorError,
  mayRetry,
  operationOf,
  type ConnectorDriver,
  type CredentialSecret,
} from '../../server/connectors/types/contract';
import { discordDriver } from '../../server/connectors/types/discord';
import { githubDriver } from '../../server/connectors/types/github';
import { httpDriver } from '../../server/connectors/types/http';
import { catalog } from '../../server/connectors/types/index';
import { mattermostDriver } from '../../server/connectors/types/mattermost';
import { slackDriver } from '../../server/connectors/types/slack';
import { startWebApiPeers, type Tokens, type WebApiPeers } from '../support/web-api-peers';
import { connectorFailure, invokeDriver } from '../support/connector-calls';

// The web-API drivers against a local stand-in speaking each service's API: what reaches the
// peer (paths, bodies, auth headers) is checked exactly. No database is involved.

const tokens: Tokens = { mattermost: 'mm-token-1', discord: 'dc-token-2', slack: 'xoxb-slack-3', github: 'ghp_github4' };
// The local peers are allowed the way an installation allows its own: by CYNODE_CONNECTOR_ALLOW.
const localPeers = egressFromEnvironment({ CYNODE_CONNECTOR_ALLOW: '127.0.0.1' });

let peers: WebApiPeers;
beforeAll(async () => {
  peers = await startWebApiPeers(tokens);
});
afterAll(async () => {
  await peers?.stop();
});
beforeEach(() => {
  peers.requests.length = 0;
});

const invoke = (
  driver: ConnectorDriver,
  config: Record<string, unknown>,
  credential: CredentialSecret | null,
  operation: string,
  params: Record<string, unknown>,
  egress = localPeers,
) => invokeDriver(driver, egress, config, credential, operation, params);

const failure = connectorFailure;

function health(driver: ConnectorDriver, config: Record<string, unknown>, credential: CredentialSecret | null) {
  return driver.health({ config, credential, signal: AbortSignal.timeout(10_000), egress: localPeers });
}

describe('connector catalog', () => {
  it('declares each type once, with schemas, limits and a transient-only retry that spares non-idempotent operations', () => {
    const specs = catalog();
    expect(specs.map((s) => s.type).sort()).toEqual(['discord', 'github', 'http', 'imap', 'mattermost', 'mcp', 'slack', 'smtp']);
    for (const spec of specs) {
      expect(spec.configSchema.type).toBe('object');
      expect(spec.credentialTypes.length).toBeGreaterThan(0);
      for (const op of spec.operations) {
        expect(op.requestSchema.type).toBe('object');
        expect(op.resultSchema.type).toBe('object');
        expect(op.timeoutMs).toBeGreaterThan(0);
        expect(op.timeoutMs).toBeLessThanOrEqual(60_000);
        if (!op.idempotent) expect(op.retry.attempts).toBe(1);
        // The catalog is served as JSON: schemas must survive serialisation.
        expect(JSON.parse(JSON.stringify(op.requestSchema))).toMatchObject({ type: 'object' });
      }
    }
    const read = operationOf(discordDriver, 'read_history');
    expect(mayRetry(read, new ConnectorError('transient', 'x'), 1)).toBe(true);
    expect(mayRetry(read, new ConnectorError('permanent', 'x'), 1)).toBe(false);
    expect(mayRetry(read, new ConnectorError('transient', 'x'), read.retry.attempts)).toBe(false);
    expect(mayRetry(operationOf(discordDriver, 'post_message'), new ConnectorError('transient', 'x'), 1)).toBe(false);
  });
});

describe('http connector', () => {
  const config = (): Record<string, unknown> => ({ base_url: `${peers.url}/echo/api` });

  it.each<[string, CredentialSecret, string, string]>([
    ['bearer token', { type: 'bearer_token', token: 'tok-123' }, 'authorization', 'Bearer tok-123'],
    ['basic', { type: 'basic', username: 'svc', password: 'pa:ss' }, 'authorization', `Basic ${Buffer.from('svc:pa:ss').toString('base64')}`],
    ['custom header', { type: 'custom_header', name: 'X-Service-Key', value: 'k-456' }, 'x-service-key', 'k-456'],
    ['api key', { type: 'api_key', key: 'api-789' }, 'x-api-key', 'api-789'],
  ])('sends a %s credential exactly as its scheme says', async (_name, credential, header, value) => {
    const result = await invoke(httpDriver, config(), credential, 'request', {
      method: 'POST',
      path: 'items/1',
      query: { q: 'a b', tag: ['x', 'y'] },
      headers: { 'X-Trace': 't1' },
      body: { name: 'widget' },
    });
    expect(result).toMatchObject({ status: 200, encoding: 'json', truncated: false });
    expect(result.body).toMatchObject({ method: 'POST', path: '/echo/api/items/1' });
    const seen = peers.requests.at(-1)!;
    expect(seen.headers[header]).toBe(value);
    expect(seen.headers['x-trace']).toBe('t1');
    expect(seen.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(seen.body).toBe('{"name":"widget"}');
    expect(seen.query).toEqual({ q: 'a b', tag: 'y' });
    expect(peers.requests).toHaveLength(1);
  });

  it('sends the api key in the header the config names', async () => {
    await invoke(httpDriver, { ...config(), api_key_header: 'X-Custom-Key' }, { type: 'api_key', key: 'k' }, 'request', { method: 'GET', path: '/' });
    expect(peers.requests.at(-1)!.headers['x-custom-key']).toBe('k');
    expect(peers.requests.at(-1)!.headers['x-api-key']).toBeUndefined();
  });

  it.each(['../status/200', 'a/../../status/200', '%2e%2e/status/200', '..%2fstatus', '//evil.example/x', 'a\\..\\b', 'x?y=1', 'a/./b', 'a\r\nb'])(
    'refuses the path %j that could leave the base URL, before sending anything',
    async (path) => {
      const e = await failure(invoke(httpDriver, config(), null, 'request', { method: 'GET', path }));
      expect(e.failure).toBe('validation_error');
      expect(peers.requests).toHaveLength(0);
    },
  );

  it('refuses headers the connector owns and a body on GET', async () => {
    for (const name of ['Authorization', 'host', 'Content-Length']) {
      const e = await failure(invoke(httpDriver, config(), null, 'request', { method: 'GET', path: 'x', headers: { [name]: 'v' } }));
      expect(e.failure).toBe('validation_error');
    }
    const custom = await failure(
      invoke(httpDriver, config(), { type: 'custom_header', name: 'X-Key', value: 'secret' }, 'request', { method: 'GET', path: 'x', headers: { 'x-key': 'other' } }),
    );
    expect(custom.failure).toBe('validation_error');
    expect((await failure(invoke(httpDriver, config(), null, 'request', { method: 'GET', path: 'x', body: 'b' }))).failure).toBe('validation_error');
    expect((await failure(invoke(httpDriver, config(), null, 'request', { method: 'TRACE', path: 'x' }))).failure).toBe('validation_error');
    expect(peers.requests).toHaveLength(0);
  });

  it('does not reach 127.0.0.1 unless the allow list names it', async () => {
    const e = await failure(invoke(httpDriver, config(), null, 'request', { method: 'GET', path: 'x' }, new EgressGuard()));
    expect(e.failure).toBe('policy_denied');
    const byEnvironment = await failure(
      invoke(httpDriver, config(), null, 'request', { method: 'GET', path: 'x' }, new EgressGuard({ allow: parseAllowList('10.0.0.0/8,localhost') })),
    );
    expect(byEnvironment.failure).toBe('policy_denied');
    expect(peers.requests).toHaveLength(0);
    await invoke(httpDriver, config(), null, 'request', { method: 'GET', path: 'x' }, new EgressGuard({ allow: parseAllowList('127.0.0.0/8') }));
    expect(peers.requests).toHaveLength(1);
  });

  it('maps statuses to failure classes: 429 and 5xx transient, 401/403 credential, other 4xx', async () => {
    const base = { base_url: peers.url };
    peers.failNext(429, { 'retry-after': '2' });
    expect(await failure(invoke(httpDriver, base, null, 'request', { method: 'GET', path: 'echo' }))).toMatchObject({
      failure: 'transient',
      providerStatus: 429,
      retryAfterMs: 2000,
    });
    const cases: [number, string][] = [[503, 'transient'], [500, 'transient'], [401, 'permanent'], [403, 'permanent'], [404, 'permanent'], [422, 'validation_error'], [400, 'validation_error']];
    for (const [status, failureClass] of cases) {
      const e = await failure(invoke(httpDriver, base, null, 'request', { method: 'GET', path: `status/${status}` }));
      expect(e).toMatchObject({ failure: failureClass, providerStatus: status });
      expect(e.message).not.toContain('status ');
    }
    const credential = await failure(invoke(httpDriver, base, null, 'request', { method: 'GET', path: 'status/401' }));
    expect(credential.message).toMatch(/refused the credential/);
  });

  it('caps an oversized body and says it did', async () => {
    const result = await invoke(httpDriver, { base_url: peers.url, max_response_bytes: 2048 }, null, 'request', { method: 'GET', path: 'big', query: { bytes: 100_000 } });
    expect(result).toMatchObject({ status: 200, truncated: true, encoding: 'text' });
    expect(String(result.body)).toHaveLength(2048);
    const small = await invoke(httpDriver, { base_url: peers.url, max_response_bytes: 2048 }, null, 'request', { method: 'GET', path: 'big', query: { bytes: 2048 } });
    expect(small).toMatchObject({ truncated: false });
  });

  it('does not follow redirects and keeps cookies out of results', async () => {
    const redirect = await invoke(httpDriver, { base_url: peers.url }, null, 'request', { method: 'GET', path: 'redirect' });
    expect(redirect).toMatchObject({ status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/' } });
    expect(peers.requests).toHaveLength(1);
    const html = await invoke(httpDriver, { base_url: peers.url }, null, 'request', { method: 'GET', path: 'html' });
    expect(html).toMatchObject({ encoding: 'text', body: '<p>Hello <b>web</b></p>' });
    expect(Object.keys(html.headers as object)).not.toContain('set-cookie');
  });

  it('connects to the address the guard resolved a name to, and sends the name as Host', async () => {
    // System DNS knows no `peer.test`: the request can only arrive through the pinned lookup.
    const named = new EgressGuard({ allow: parseAllowList('peer.test'), resolver: async () => [{ address: '127.0.0.1', family: 4 }] });
    const result = await invoke(httpDriver, { base_url: `http://peer.test:${peers.port}/echo` }, null, 'request', { method: 'GET', path: 'n' }, named);
    expect(result).toMatchObject({ status: 200, body: { path: '/echo/n' } });
    expect(peers.requests.at(-1)!.headers.host).toBe(`peer.test:${peers.port}`);
    const unlisted = new EgressGuard({ resolver: async () => [{ address: '127.0.0.1', family: 4 }] });
    const e = await failure(invoke(httpDriver, { base_url: `http://peer.test:${peers.port}` }, null, 'request', { method: 'GET', path: 'n' }, unlisted));
    expect(e.failure).toBe('policy_denied');
    expect(peers.requests).toHaveLength(1);
  });

  it('answers a peer that is too slow as transient', async () => {
    const op = operationOf(httpDriver, 'request');
    const started = Date.now();
    const slow = await failure(
      httpDriver.invoke({ config: { base_url: peers.url }, credential: null, operation: op, params: { method: 'GET', path: 'slow', query: { ms: 5000 } }, signal: AbortSignal.timeout(300), egress: localPeers }),
    );
    expect(slow).toMatchObject({ failure: 'transient', message: expect.stringMatching(/did not answer in time/) });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('answers a peer that does not listen as transient, and checks health', async () => {
    const closed = await failure(invoke(httpDriver, { base_url: 'http://127.0.0.1:1' }, null, 'request', { method: 'GET', path: '' }));
    expect(closed.failure).toBe('transient');
    await expect(health(httpDriver, config(), null)).resolves.toEqual({ ok: true });
    await expect(health(httpDriver, { base_url: `${peers.url}/status/401` }, null)).resolves.toMatchObject({ ok: false, failure: 'permanent' });
  });
});

describe('messaging connectors', () => {
  it('mattermost posts with a bearer token and reads the channel back', async () => {
    const config = { base_url: peers.url };
    const credential: CredentialSecret = { type: 'bearer_token', token: tokens.mattermost };
    const posted = await invoke(mattermostDriver, config, credential, 'post_message', { channel_id: 'town1square', text: 'Deploy done' });
    expect(posted).toMatchObject({ channel_id: 'town1square', id: expect.stringMatching(/^p\d+$/) });
    const sent = peers.requests.at(-1)!;
    expect(sent).toMatchObject({ method: 'POST', path: '/api/v4/posts' });
    expect(sent.headers.authorization).toBe(`Bearer ${tokens.mattermost}`);
    expect(JSON.parse(sent.body)).toEqual({ channel_id: 'town1square', message: 'Deploy done' });

    await invoke(mattermostDriver, config, credential, 'post_message', { channel_id: 'town1square', text: 'Second' });
    const read = await invoke(mattermostDriver, config, credential, 'read_history', { channel_id: 'town1square', limit: 10 });
    expect((read.messages as { text: string }[]).map((m) => m.text)).toEqual(['Second', 'Deploy done']);
    expect(peers.requests.at(-1)).toMatchObject({ method: 'GET', path: '/api/v4/channels/town1square/posts', query: { per_page: '10' } });

    await expect(health(mattermostDriver, config, credential)).resolves.toEqual({ ok: true });
    const wrong = await failure(invoke(mattermostDriver, config, { type: 'bearer_token', token: 'nope' }, 'post_message', { channel_id: 'c1', text: 'x' }));
    expect(wrong).toMatchObject({ failure: 'permanent', providerStatus: 401 });
  });

  it('discord posts as a bot and reads history newest first', async () => {
    const config = { base_url: peers.url };
    const credential: CredentialSecret = { type: 'bearer_token', token: tokens.discord };
    const posted = await invoke(discordDriver, config, credential, 'post_message', { channel_id: '1234567890', text: 'Hello @everyone' });
    expect(posted).toMatchObject({ channel_id: '1234567890' });
    const sent = peers.requests.at(-1)!;
    expect(sent).toMatchObject({ method: 'POST', path: '/api/v10/channels/1234567890/messages' });
    expect(sent.headers.authorization).toBe(`Bot ${tokens.discord}`);
    expect(JSON.parse(sent.body)).toEqual({ content: 'Hello @everyone', allowed_mentions: { parse: [] } });

    await invoke(discordDriver, config, credential, 'post_message', { channel_id: '1234567890', text: 'Later' });
    const read = await invoke(discordDriver, config, credential, 'read_history', { channel_id: '1234567890', limit: 5 });
    expect(read.messages).toEqual([
      expect.objectContaining({ text: 'Later', author: 'cynode-bot' }),
      expect.objectContaining({ text: 'Hello @everyone' }),
    ]);
    expect(peers.requests.at(-1)).toMatchObject({ method: 'GET', path: '/api/v10/channels/1234567890/messages', query: { limit: '5' } });
    await expect(health(discordDriver, config, credential)).resolves.toEqual({ ok: true });
    expect((await failure(invoke(discordDriver, config, credential, 'read_history', { channel_id: '../users' }))).failure).toBe('validation_error');
  });

  it('slack posts with a bearer token and classes its ok:false answers', async () => {
    const config = { base_url: peers.url };
    const credential: CredentialSecret = { type: 'bearer_token', token: tokens.slack };
    const posted = await invoke(slackDriver, config, credential, 'post_message', { channel: 'C0123', text: 'Nightly green' });
    expect(posted).toMatchObject({ channel: 'C0123', ts: expect.stringMatching(/^\d+\.\d+$/) });
    const sent = peers.requests.at(-1)!;
    expect(sent).toMatchObject({ method: 'POST', path: '/api/chat.postMessage' });
    expect(sent.headers.authorization).toBe(`Bearer ${tokens.slack}`);
    expect(sent.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(sent.body)).toEqual({ channel: 'C0123', text: 'Nightly green' });
    const read = await invoke(slackDriver, config, credential, 'read_history', { channel: 'C0123' });
    expect((read.messages as { text: string }[]).map((m) => m.text)).toEqual(['Nightly green']);

    expect(await failure(invoke(slackDriver, config, credential, 'post_message', { channel: 'C_MISSING', text: 'x' }))).toMatchObject({
      failure: 'validation_error',
      message: expect.stringContaining('channel_not_found'),
    });
    expect((await failure(invoke(slackDriver, config, credential, 'post_message', { channel: 'C_LIMIT', text: 'x' }))).failure).toBe('transient');
    const wrong = await failure(invoke(slackDriver, config, { type: 'bearer_token', token: 'xoxb-wrong' }, 'post_message', { channel: 'C0123', text: 'x' }));
    expect(wrong.failure).toBe('permanent');
    expect(wrong.message).toMatch(/refused the credential \(invalid_auth\)/);
    await expect(health(slackDriver, config, credential)).resolves.toEqual({ ok: true });
    await expect(health(slackDriver, config, { type: 'bearer_token', token: 'bad' })).resolves.toMatchObject({ ok: false, failure: 'permanent' });
    peers.failNext(429, { 'retry-after': '30' });
    expect(await failure(invoke(slackDriver, config, credential, 'post_message', { channel: 'C0123', text: 'x' }))).toMatchObject({ failure: 'transient', retryAfterMs: 30_000 });
  });

  it('github opens an issue and comments with the headers its API asks for', async () => {
    const config = { base_url: peers.url, owner: 'cynode', repo: 'demo' };
    const credential: CredentialSecret = { type: 'bearer_token', token: tokens.github };
    const issue = await invoke(githubDriver, config, credential, 'create_issue', { title: 'Nightly failed', body: 'See run 42', labels: ['ci'] });
    expect(issue).toEqual({ number: 1, url: 'https://github.com/cynode/demo/issues/1' });
    const sent = peers.requests.at(-1)!;
    expect(sent).toMatchObject({ method: 'POST', path: '/repos/cynode/demo/issues' });
    expect(sent.headers).toMatchObject({
      authorization: `Bearer ${tokens.github}`,
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      'user-agent': 'CyNode',
    });
    expect(JSON.parse(sent.body)).toEqual({ title: 'Nightly failed', body: 'See run 42', labels: ['ci'] });

    const comment = await invoke(githubDriver, config, credential, 'post_message', { issue_number: 1, text: 'Fixed by rerun' });
    expect(comment).toMatchObject({ url: expect.stringContaining('/issues/1#issuecomment-') });
    expect(peers.requests.at(-1)).toMatchObject({ method: 'POST', path: '/repos/cynode/demo/issues/1/comments', body: '{"body":"Fixed by rerun"}' });

    await expect(health(githubDriver, config, credential)).resolves.toEqual({ ok: true });
    const wrong = await failure(invoke(githubDriver, config, { type: 'bearer_token', token: 'ghp_wrong' }, 'create_issue', { title: 't' }));
    expect(wrong).toMatchObject({ failure: 'permanent', providerStatus: 401 });
    peers.failNext(403, { 'x-ratelimit-remaining': '0' });
    expect((await failure(invoke(githubDriver, config, credential, 'create_issue', { title: 't' }))).failure).toBe('transient');
    expect((await failure(invoke(githubDriver, { ...config, owner: '..' }, credential, 'create_issue', { title: 't' }))).failure).toBe('validation_error');
  });

  it('refuses the stand-in on loopback for every messaging type unless allowed', async () => {
    const guard = new EgressGuard();
    const credential: CredentialSecret = { type: 'bearer_token', token: 't' };
    const calls: Promise<unknown>[] = [
      invoke(mattermostDriver, { base_url: peers.url }, credential, 'post_message', { channel_id: 'c1', text: 'x' }, guard),
      invoke(discordDriver, { base_url: peers.url }, credential, 'post_message', { channel_id: '1', text: 'x' }, guard),
      invoke(slackDriver, { base_url: peers.url }, credential, 'post_message', { channel: 'C1', text: 'x' }, guard),
      invoke(githubDriver, { base_url: peers.url, owner: 'o', repo: 'r' }, credential, 'create_issue', { title: 'x' }, guard),
    ];
    for (const call of calls) expect((await failure(call)).failure).toBe('policy_denied');
    expect(peers.requests).toHaveLength(0);
  });
});
