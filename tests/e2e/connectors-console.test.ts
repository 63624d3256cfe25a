import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { ADMIN_PASSWORD, SIZES, apiCall, apiLogin, screenshot, signIn, startConsoleEnv, type ConsoleEnv } from './harness';

// The Connectors and Policy pages against a real `cynode serve` (its connector executor and
// policy engine) and Debian's Chromium; the web API behind the http connector is a local
// server that records what reached it.
describe('connectors and policy in the console', () => {
  let env: ConsoleEnv;
  let ctx: BrowserContext;
  let page: Page;
  let peer: Server;
  let peerUrl: string;
  let adminToken: string;
  let bobId: string;
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = [];
  const pageErrors: string[] = [];
  const SECRET = 'console-e2e-bearer-Zq8vK2mW4pX7';

  beforeAll(async () => {
    peer = createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ greeting: 'hello from the stand-in', path: req.url }));
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    peerUrl = `http://127.0.0.1:${(peer.address() as AddressInfo).port}`;
    // An approved MCP server (the reference server-everything from npm) for the tools test.
    const everything = resolve('node_modules/@modelcontextprotocol/server-everything/dist/index.js');
    env = await startConsoleEnv({ sandbox: false, env: { CYNODE_MCP_COMMANDS: JSON.stringify({ everything: { argv: [process.execPath, everything, 'stdio'], credential_env: 'API_KEY' } }) } });
    adminToken = await apiLogin(env.base, 'admin', ADMIN_PASSWORD);
    bobId = (await apiCall(env.base, adminToken, 'POST', '/v1/users', { handle: 'bob', password: 'bob-password-1' })).id;
    ctx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await signIn(page, env.base, 'admin', ADMIN_PASSWORD);
  }, 180_000);

  afterAll(async () => {
    await env?.close();
    await new Promise((r) => peer?.close(r));
  }, 60_000);

  let connectorPath = '';

  it('installs an http connector through the form built from its config schema; a bad config shows the server’s problem', async () => {
    await page.getByRole('link', { name: 'Connectors' }).click();
    await page.getByRole('button', { name: 'Install Web API' }).click();
    const form = page.getByRole('form', { name: 'Install Web API' });
    await form.getByRole('textbox', { name: 'Name', exact: true }).fill('Stand-in API');
    // Required fields are marked.
    expect(await form.locator('label.schema-field', { hasText: 'base url' }).locator('.required').count()).toBe(1);
    await form.getByRole('textbox', { name: /^base url/ }).fill('ftp://not-a-web-api');
    await form.getByRole('button', { name: 'Install' }).click();
    await expect.poll(() => form.getByRole('alert').textContent(), { timeout: 10_000 }).toMatch(/not valid.*base_url/i);
    expect(page.url()).toMatch(/\/connectors$/);

    await form.getByRole('textbox', { name: /^base url/ }).fill(peerUrl);
    await form.getByRole('button', { name: 'Install' }).click();
    await page.waitForURL(/\/connectors\/[0-9a-f-]{36}$/, { timeout: 10_000 });
    connectorPath = new URL(page.url()).pathname;
    await page.getByRole('heading', { name: 'Stand-in API' }).waitFor();
    const { connectors } = await apiCall(env.base, adminToken, 'GET', '/v1/connectors?limit=50');
    expect(connectors).toHaveLength(1);
    expect(connectors[0]).toMatchObject({ type: 'http', name: 'Stand-in API', config: { base_url: peerUrl } });
  });

  it('adds a bearer credential whose secret is never shown back', async () => {
    const add = page.getByRole('form', { name: 'Add credential' });
    await add.getByLabel('Token').fill(SECRET);
    await add.getByRole('button', { name: 'Add credential' }).click();
    const table = page.getByRole('table', { name: 'Credentials' });
    await expect.poll(() => table.textContent(), { timeout: 10_000 }).toMatch(/bearer_token.*v1.*active/);
    // The field is emptied and the page holds the secret nowhere (nor does any answer).
    expect(await add.getByLabel('Token').inputValue()).toBe('');
    expect(await page.content()).not.toContain(SECRET);
    const creds = await apiCall(env.base, adminToken, 'GET', `/v1${connectorPath}/credentials`);
    expect(JSON.stringify(creds)).not.toContain(SECRET);
    await screenshot(page, 'connector-detail-wide');
  });

  it('lets an admin allow the loopback stand-in on the Connectors page; an entry it cannot read shows the problem', async () => {
    // The stand-in is on loopback, which connectors may reach only once an admin allows it.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Connectors' }).click();
    const form = page.getByRole('form', { name: 'Egress allow list' });
    await form.getByRole('textbox', { name: 'Allowed destinations' }).fill('127.0.0.1\nnot a host!');
    await form.getByRole('button', { name: 'Save allow list' }).click();
    await expect.poll(() => form.getByRole('alert', { name: 'Problem' }).textContent(), { timeout: 10_000 }).toContain('not a host!');
    expect((await apiCall(env.base, adminToken, 'GET', '/v1/connectors/egress-allow')).entries).toEqual([]);
    await form.getByRole('textbox', { name: 'Allowed destinations' }).fill('127.0.0.1\n');
    await form.getByRole('button', { name: 'Save allow list' }).click();
    await expect.poll(async () => (await apiCall(env.base, adminToken, 'GET', '/v1/connectors/egress-allow')).entries, { timeout: 10_000 }).toEqual(['127.0.0.1']);
    await page.goto(`${env.base}${connectorPath}`);
    await page.getByRole('heading', { name: 'Stand-in API' }).waitFor();
  });

  it('runs `request` by hand from its params form, shows the result, and lists it in the history', async () => {
    const run = page.getByRole('form', { name: 'Run request' });
    await run.getByRole('combobox', { name: /^method/ }).selectOption('GET');
    await run.getByRole('textbox', { name: /^path/ }).fill('/hello');
    await run.getByRole('textbox', { name: /^query/ }).fill('{"lang": "en"}');
    await run.getByRole('button', { name: 'Run' }).click();
    const result = run.getByRole('status', { name: 'Result' });
    await expect.poll(() => result.textContent(), { timeout: 15_000 }).toContain('hello from the stand-in');
    expect(await result.textContent()).toContain('/hello?lang=en');
    // The stand-in got the secret as the credential's scheme says; the page never did.
    const hit = seen.find((r) => r.url === '/hello?lang=en');
    expect(hit?.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(await page.content()).not.toContain(SECRET);

    const history = page.getByRole('table', { name: 'History' });
    await expect.poll(() => history.textContent(), { timeout: 10_000 }).toMatch(/request.*success/);

    // Params the operation refuses: the gateway's problem is shown, nothing reaches the peer.
    const before = seen.length;
    await run.getByRole('textbox', { name: /^headers/ }).fill('{"Authorization": "Bearer stolen"}');
    await run.getByRole('button', { name: 'Run' }).click();
    await expect.poll(() => run.getByRole('alert', { name: 'Problem' }).textContent(), { timeout: 10_000 }).toMatch(/Authorization.*set by the connector/);
    expect(seen.length).toBe(before);
    // Invalid JSON in a field is caught before anything is sent.
    await run.getByRole('textbox', { name: /^headers/ }).fill('{not json');
    await run.getByRole('button', { name: 'Run' }).click();
    await expect.poll(() => run.getByRole('alert', { name: 'Problem' }).textContent()).toMatch(/headers: not valid JSON/);
  });

  it('rotates the credential (the peer gets the new secret) and revokes it (the next call is refused)', async () => {
    const NEW_SECRET = 'console-e2e-rotated-Hn3rT6yU1oP9';
    await page.getByRole('button', { name: 'Rotate', exact: true }).click();
    const rotate = page.getByRole('form', { name: 'Rotate credential' });
    await rotate.getByLabel('Token').fill(NEW_SECRET);
    await rotate.getByRole('button', { name: 'Rotate' }).click();
    const table = page.getByRole('table', { name: 'Credentials' });
    await expect.poll(() => table.textContent(), { timeout: 10_000 }).toMatch(/bearer_token.*v2.*active/);
    expect(await page.content()).not.toContain(NEW_SECRET);

    const run = page.getByRole('form', { name: 'Run request' });
    await run.getByRole('textbox', { name: /^headers/ }).fill('');
    await run.getByRole('textbox', { name: /^path/ }).fill('/after-rotate');
    await run.getByRole('button', { name: 'Run' }).click();
    await expect.poll(() => run.getByRole('status', { name: 'Result' }).textContent(), { timeout: 15_000 }).toContain('/after-rotate');
    expect(seen.find((r) => r.url.startsWith('/after-rotate'))?.headers.authorization).toBe(`Bearer ${NEW_SECRET}`);

    page.once('dialog', (d) => void d.accept());
    await table.getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => table.textContent(), { timeout: 10_000 }).toMatch(/revoked/);
    const before = seen.length;
    await run.getByRole('textbox', { name: /^path/ }).fill('/after-revoke');
    await run.getByRole('button', { name: 'Run' }).click();
    await run.getByRole('alert', { name: 'Problem' }).waitFor({ timeout: 15_000 });
    expect(seen.length).toBe(before);
    await expect.poll(() => page.getByRole('table', { name: 'History' }).textContent(), { timeout: 10_000 }).toMatch(/failure/);
  });

  it('changes the configuration through the same schema form; a bad one shows the problem and keeps the old', async () => {
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    const edit = page.getByRole('form', { name: 'Edit connector' });
    expect(await edit.getByRole('textbox', { name: /^base url/ }).inputValue()).toBe(peerUrl);
    await edit.getByRole('spinbutton', { name: /^max response bytes/ }).fill('4096');
    await edit.getByRole('textbox', { name: /^base url/ }).fill('gopher://old.example');
    await edit.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => edit.getByRole('alert').textContent(), { timeout: 10_000 }).toMatch(/not valid.*base_url/i);
    expect((await apiCall(env.base, adminToken, 'GET', `/v1${connectorPath}`)).config.base_url).toBe(peerUrl);
    await edit.getByRole('textbox', { name: /^base url/ }).fill(peerUrl);
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.waitFor({ state: 'detached', timeout: 10_000 });
    expect((await apiCall(env.base, adminToken, 'GET', `/v1${connectorPath}`)).config).toMatchObject({ base_url: peerUrl, max_response_bytes: 4096 });
  });

  it('disables and enables the instance from its page', async () => {
    await page.getByRole('button', { name: 'Disable', exact: true }).first().click();
    await expect.poll(async () => (await apiCall(env.base, adminToken, 'GET', `/v1${connectorPath}`)).status, { timeout: 10_000 }).toBe('disabled');
    await page.getByRole('button', { name: 'Enable', exact: true }).click();
    await expect.poll(async () => (await apiCall(env.base, adminToken, 'GET', `/v1${connectorPath}`)).status, { timeout: 10_000 }).not.toBe('disabled');
  });

  it("lists an MCP server's tools in the run form and runs one from the form built from its input schema", async () => {
    const mcp = await apiCall(env.base, adminToken, 'POST', '/v1/connectors', { type: 'mcp', name: 'Everything', config: { transport: 'stdio', command: 'everything' } });
    await apiCall(env.base, adminToken, 'POST', `/v1/connectors/${mcp.id}/credentials`, { type: 'api_key', secret: { key: 'mcp-console-key-5d1e' } });
    await page.goto(`${env.base}/connectors/${mcp.id}`);
    await page.getByRole('heading', { name: 'Everything' }).waitFor();
    const picker = page.getByRole('combobox', { name: 'Operation' });
    await expect.poll(() => picker.locator('option').allTextContents(), { timeout: 30_000 }).toEqual(expect.arrayContaining([expect.stringContaining('(echo)'), expect.stringContaining('(get-sum)')]));
    await picker.selectOption('echo');
    const run = page.getByRole('form', { name: 'Run echo' });
    await run.getByRole('textbox', { name: /^message/ }).fill('hello from the console');
    await run.getByRole('button', { name: 'Run' }).click();
    await expect.poll(() => run.getByRole('status', { name: 'Result' }).textContent(), { timeout: 30_000 }).toContain('hello from the console');
    expect(await page.content()).not.toContain('mcp-console-key-5d1e');
  });

  it('admin: an invalid rule shows its problem while typing, a valid one is saved, and explain names the deciding rule', async () => {
    await page.getByRole('link', { name: 'Policy' }).click();
    await page.getByRole('list', { name: 'Rules' }).waitFor();
    await page.getByRole('button', { name: 'New rule' }).click();
    const form = page.getByRole('form', { name: 'New rule' });
    await form.getByLabel('Name', { exact: true }).fill('Keep the small model from bob');
    const text = form.getByLabel('Rule (one Cedar policy)');
    await text.fill('forbid (principal, action == Action::"model.teleport", resource);');
    // Nothing saved yet: the problem comes from validation as the admin types.
    const problems = form.getByRole('list', { name: 'Rule problems' });
    await expect.poll(() => problems.textContent(), { timeout: 10_000 }).toMatch(/model\.teleport/);
    const stored = await apiCall(env.base, adminToken, 'GET', '/v1/policy/rules?limit=200');
    expect(stored.rules.some((r: { name: string }) => r.name === 'Keep the small model from bob')).toBe(false);

    await text.fill(`forbid (principal == User::"${bobId}", action == Action::"model.use", resource == Model::"qwen2.5:0.5b");`);
    await form.locator('[data-testid=rule-check] .badge', { hasText: 'valid' }).waitFor({ timeout: 10_000 });
    expect(await problems.count()).toBe(0);
    await form.getByRole('button', { name: 'Create rule' }).click();
    await expect.poll(() => page.getByRole('list', { name: 'Rules' }).textContent(), { timeout: 10_000 }).toContain('Keep the small model from bob');
    const rule = (await apiCall(env.base, adminToken, 'GET', '/v1/policy/rules?limit=200')).rules.find((r: { name: string }) => r.name === 'Keep the small model from bob');
    expect(rule).toBeDefined();

    await page.getByRole('link', { name: 'Explain' }).click();
    const explain = page.getByRole('form', { name: 'Explain a decision' });
    await explain.getByRole('combobox', { name: /^User/ }).selectOption({ label: 'bob' });
    await explain.getByRole('combobox', { name: /^Action/ }).selectOption('model.use');
    await explain.getByRole('combobox', { name: 'Model', exact: true }).fill('qwen2.5:0.5b');
    await explain.getByRole('button', { name: 'Explain' }).click();
    const decision = page.getByRole('status', { name: 'Decision' });
    await expect.poll(() => decision.textContent(), { timeout: 10_000 }).toMatch(/deny/);
    expect(await decision.textContent()).toContain(rule.id);
    // The other model stays allowed for bob, by a shipped rule.
    await explain.getByRole('combobox', { name: 'Model', exact: true }).fill('llama3:8b');
    await explain.getByRole('button', { name: 'Explain' }).click();
    await expect.poll(() => decision.textContent(), { timeout: 10_000 }).toMatch(/allow/);
    expect(await decision.textContent()).not.toContain(rule.id);
    await screenshot(page, 'policy-explain-wide');
    // A connector resource: bob may not invoke the admin's instance (no rule allows it), the admin may.
    await explain.getByRole('combobox', { name: /^Action/ }).selectOption('connector.invoke');
    await explain.getByRole('combobox', { name: /^One of your connectors/ }).selectOption({ label: 'Stand-in API (http)' });
    await explain.getByRole('combobox', { name: 'Operation', exact: true }).fill('request');
    await explain.getByRole('button', { name: 'Explain' }).click();
    await expect.poll(() => decision.textContent(), { timeout: 10_000 }).toMatch(/deny.*no rule/);
    await explain.getByRole('combobox', { name: /^User/ }).selectOption({ label: 'admin' });
    await explain.getByRole('button', { name: 'Explain' }).click();
    await expect.poll(() => decision.textContent(), { timeout: 10_000 }).toMatch(/allow.*for admin/);

    // A tool of the MCP server: the shipped rule lets every user call it.
    await explain.getByRole('combobox', { name: /^Action/ }).selectOption('tool.call');
    await explain.getByRole('textbox', { name: 'Tool of the MCP server' }).fill('task.create');
    await explain.getByRole('button', { name: 'Explain' }).click();
    await expect.poll(() => decision.textContent(), { timeout: 10_000 }).toMatch(/allow[\s\S]*default-tool-call/);

    // The access audit lists the connector call made above.
    await page.getByRole('link', { name: 'Access audit' }).click();
    await expect.poll(() => page.getByRole('table', { name: 'Access decisions' }).textContent(), { timeout: 10_000 }).toMatch(/allow\s*connector\.invoke/);
    expect(pageErrors).toEqual([]);
  });

  it('renders the connector and policy pages at a wide and a narrow size without sideways overflow', async () => {
    const pages: Array<[string, string, string]> = [
      ['connectors', '/connectors', 'Connectors'],
      ['connector', connectorPath, 'Stand-in API'],
      ['policy-rules', '/policy/rules', 'Access policy'],
      ['policy-explain', '/policy/explain', 'Access policy'],
      ['policy-access', '/policy/access', 'Access policy'],
    ];
    for (const size of SIZES) {
      await page.setViewportSize({ width: size.width, height: size.height });
      for (const [name, path, heading] of pages) {
        await page.goto(`${env.base}${path}`);
        await page.getByRole('heading', { level: 1, name: heading }).waitFor({ timeout: 10_000 });
        await page.locator('.loading').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow, `${name} at ${size.name} overflows by ${overflow}px`).toBeLessThanOrEqual(1);
        // Nor is any button pushed out of sight (a table clips what does not fit).
        const clipped = await page.evaluate(() => [...document.querySelectorAll('main button')].filter((b) => b.getBoundingClientRect().right > window.innerWidth + 1).map((b) => b.textContent));
        expect(clipped, `${name} at ${size.name}`).toEqual([]);
        await screenshot(page, `${name}-${size.name}`);
      }
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(pageErrors).toEqual([]);
  });

  it('a non-admin sees Connectors but not Policy, and the Policy address tells them it is for admins', async () => {
    const bobCtx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const bob = await bobCtx.newPage();
      await signIn(bob, env.base, 'bob', 'bob-password-1');
      const nav = bob.getByRole('navigation', { name: 'Main' });
      await nav.getByRole('link', { name: 'Connectors' }).waitFor();
      expect(await nav.getByRole('link', { name: 'Policy' }).count()).toBe(0);
      // Bob does not see admin's instance.
      await nav.getByRole('link', { name: 'Connectors' }).click();
      await bob.getByText('No connectors yet').waitFor({ timeout: 10_000 });
      expect(await bob.getByRole('form', { name: 'Egress allow list' }).count()).toBe(0);
      await bob.goto(`${env.base}/policy`);
      await bob.getByText('Admins only').waitFor({ timeout: 10_000 });
      expect(await bob.getByRole('list', { name: 'Rules' }).count()).toBe(0);
    } finally {
      await bobCtx.close();
    }
  });
});
