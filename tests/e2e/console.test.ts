import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { ADMIN_PASSWORD, SIZES, apiCall, apiLogin, screenshot, signIn, startConsoleEnv, type ConsoleEnv } from './harness';

// The console against a real `cynode serve`: its embedded node runs sandboxes on Docker and
// answers chat through the Ollama fixture; Debian's Chromium drives the pages.
describe('console in Chromium', () => {
  let env: ConsoleEnv;
  let ctx: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // Slow enough tokens that the answer visibly grows while it streams.
    env = await startConsoleEnv({ tokenDelayMs: 60 });
    ctx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  }, 180_000);

  afterAll(async () => {
    await env?.close();
  }, 60_000);

  it('serves the console at / with a strict CSP, deep links too, and never shadows the API', async () => {
    const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
    const root = await fetch(`${env.base}/`, { headers: html });
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toMatch(/text\/html/);
    const csp = root.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).not.toContain('unsafe-inline');
    const deep = await fetch(`${env.base}/chat/some-thread`, { headers: html });
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('<div id="root">');
    // Only browsers (asking for HTML) get the page; a script keeps the API's 404 problem.
    const plain = await fetch(`${env.base}/chat/some-thread`);
    expect(plain.status).toBe(404);
    expect(plain.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await fetch(`${env.base}/`, { method: 'POST', headers: { ...html, 'content-type': 'application/json' }, body: '{}' })).status).toBe(404);
    // The API keeps its own answers: unknown API paths are problems, not the console.
    const api = await fetch(`${env.base}/v1/no-such-thing`, { headers: { accept: 'text/html' } });
    expect(api.status).toBe(404);
    expect(api.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await fetch(`${env.base}/healthz`)).status).toBe(200);
    expect((await fetch(`${env.base}/v1/users/me`)).status).toBe(401);
    expect((await fetch(`${env.base}/assets/missing-file.js`)).status).toBe(404);
  });

  it('signs in (a wrong password is refused with a message)', async () => {
    await page.goto(`${env.base}/`);
    await screenshot(page, 'signin-wide');
    await page.getByLabel('User').fill('admin');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent({ timeout: 10_000 })).resolves.toMatch(/\S/);
    expect(await page.getByRole('textbox', { name: 'Message' }).count()).toBe(0);

    await signIn(page, env.base, 'admin', ADMIN_PASSWORD);
    expect(await page.locator('.who').textContent()).toMatch(/Admin/);
    // A reload keeps the session (refresh token), no second sign-in.
    await page.reload();
    await page.getByRole('textbox', { name: 'Message' }).waitFor({ timeout: 10_000 });
  });

  it('streams a chat answer into the page as Markdown, and stores the thread', async () => {
    await page.goto(`${env.base}/chat`);
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.waitFor();
    // Record every text the answer shows while it grows.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as any).__answers = seen;
      new MutationObserver(() => {
        const bubbles = document.querySelectorAll('.msg.assistant .bubble');
        const last = bubbles[bubbles.length - 1];
        if (last?.textContent && seen.at(-1) !== last.textContent) seen.push(last.textContent);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const question = 'Please say **one two three four five six seven eight nine ten**';
    // Slow enough (about 2.5 s in all) that a loaded machine still renders the stream growing.
    env.ollama.setBehaviour({ tokenDelayMs: 150 });
    await box.fill(question);
    await box.press('Enter');
    // While it streams, the stop button is offered.
    await page.getByRole('button', { name: 'Stop' }).waitFor({ timeout: 20_000 });
    const answer = page.locator('.msg.assistant').last();
    await expect.poll(() => answer.textContent(), { timeout: 20_000 }).toContain('Echo: Please say one two three four five six seven eight nine ten');
    await page.getByRole('button', { name: 'Send' }).waitFor({ timeout: 10_000 });
    env.ollama.setBehaviour({ tokenDelayMs: 60 });
    // Markdown: the bold survived as <strong>, not as asterisks.
    expect(await answer.locator('strong').first().textContent()).toContain('one two three');
    const seen = (await page.evaluate(() => (window as any).__answers)) as string[];
    const partial = seen.filter((t) => t.startsWith('Echo:') && !t.includes('ten'));
    expect(partial.length, `answers seen: ${JSON.stringify(seen)}`).toBeGreaterThanOrEqual(3);
    // The URL names the new thread, listed on the left.
    expect(page.url()).toMatch(/\/chat\/[0-9a-f-]{36}$/);
    await expect.poll(() => page.locator('.thread-item').count()).toBeGreaterThanOrEqual(1);
    await screenshot(page, 'chat-wide');
  });

  it('stops a streaming answer with the stop button', async () => {
    env.ollama.setBehaviour({ tokenDelayMs: 400 });
    try {
      await page.getByRole('button', { name: /New chat/ }).click();
      const box = page.getByRole('textbox', { name: 'Message' });
      await box.fill('a b c d e f g h i j k l m n o p q r s t u v w x y z');
      await box.press('Enter');
      await expect.poll(() => page.locator('.msg.assistant').last().textContent(), { timeout: 15_000 }).toMatch(/Echo: a b/);
      await page.getByRole('button', { name: 'Stop' }).click();
      await page.getByText('Stopped').waitFor({ timeout: 10_000 });
      // The generation on the node was aborted, not left running.
      await expect.poll(() => env.ollama.requestsTo('/api/chat').some((r) => r.aborted), { timeout: 10_000 }).toBe(true);
      expect(await page.locator('.msg.assistant').last().textContent()).not.toContain('z');
    } finally {
      env.ollama.setBehaviour({ tokenDelayMs: 60 });
    }
  });

  it('shows that a secret was redacted, and keeps it out of the thread title', async () => {
    await page.getByRole('button', { name: /New chat/ }).click();
    const secret = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill(`my token is ${secret} please keep it`);
    await box.press('Enter');
    const notice = page.locator('.notice.redacted');
    await notice.waitFor({ timeout: 20_000 });
    expect(await notice.textContent()).toMatch(/Secrets were removed/);
    const stored = await page.locator('.msg.user .bubble').last().textContent();
    expect(stored).toContain('SECRET_REDACTED');
    expect(stored).not.toContain(secret);
    const titles = await page.locator('.thread-item').allTextContents();
    expect(titles.join('\n')).not.toContain(secret);
    expect(await page.content()).not.toContain(secret);
  });

  it('renames the open chat and deletes it (after a confirmation)', async () => {
    await page.getByRole('button', { name: 'Rename' }).click();
    const title = page.getByRole('textbox', { name: 'Chat title' });
    await title.fill('Token question');
    await title.press('Enter');
    await page.locator('.thread-item', { hasText: 'Token question' }).waitFor({ timeout: 10_000 });
    const before = await page.locator('.thread-item').count();

    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL((url) => url.pathname === '/chat', { timeout: 10_000 });
    await page.waitForFunction((n) => document.querySelectorAll('.thread-item').length === n - 1, before, { timeout: 10_000 });
    expect(await page.locator('.thread-item', { hasText: 'Token question' }).count()).toBe(0);
  });

  it('runs a commands task to completion with its output in the log tail and the result', async () => {
    await page.goto(`${env.base}/tasks`);
    await page.getByRole('button', { name: '+ New task' }).click();
    await page.getByRole('radio', { name: 'Commands' }).click();
    await page.getByLabel('Commands').fill('echo hello');
    await page.getByRole('button', { name: 'Run task' }).click();
    await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
    const status = page.locator('.page-header .badge');
    await expect.poll(() => status.textContent(), { timeout: 90_000, interval: 250 }).toBe('completed');
    await expect.poll(() => page.getByTestId('log-tail').textContent(), { timeout: 15_000 }).toContain('hello');
    await expect.poll(() => page.getByTestId('task-result').textContent(), { timeout: 15_000 }).toMatch(/Exit code\s*0[\s\S]*hello/);
    await screenshot(page, 'task-detail-wide');
    // And the list shows it with its status; the filter narrows it.
    await page.goto(`${env.base}/tasks`);
    await page.getByRole('button', { name: 'completed' }).click();
    await expect.poll(() => page.locator('tbody tr').count()).toBeGreaterThanOrEqual(1);
    await page.getByRole('button', { name: 'failed', exact: true }).click();
    await page.getByText('No failed tasks').waitFor();
  }, 120_000);

  it('lists the embedded node as active, with its models, and the join command', async () => {
    await page.goto(`${env.base}/nodes`);
    const card = page.locator('article.node').first();
    await card.waitFor({ timeout: 15_000 });
    expect(await card.getByTestId('node-status').textContent()).toBe('active');
    expect(await card.textContent()).toContain('This machine');
    expect(await card.textContent()).toContain('llama3:8b');
    await page.getByRole('button', { name: '+ Add a node' }).click();
    const command = page.getByTestId('join-command');
    await command.waitFor();
    expect(await command.textContent()).toMatch(/^cynode node --join http:\/\/\S+:\d+ --psk •+$/);
    await page.getByRole('button', { name: 'Show' }).click();
    const token = await apiLogin(env.base, 'admin', ADMIN_PASSWORD);
    const join = await apiCall(env.base, token, 'GET', '/v1/nodes/join');
    expect(await command.textContent()).toBe(join.join_command);
  });

  it('a second user sees none of the first user’s threads', async () => {
    const admin = await apiLogin(env.base, 'admin', ADMIN_PASSWORD);
    await apiCall(env.base, admin, 'POST', '/v1/users', { handle: 'bob', password: 'bob-password-1', display_name: 'Bob' });
    const { threads } = await apiCall(env.base, admin, 'GET', '/v1/chat/threads');
    expect(threads.length).toBeGreaterThanOrEqual(1);

    const bobCtx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const bob = await bobCtx.newPage();
      await signIn(bob, env.base, 'bob', 'bob-password-1');
      await bob.getByText('No chats yet').waitFor({ timeout: 10_000 });
      expect(await bob.locator('.thread-item').count()).toBe(0);
      // Even by its address, the admin's thread is not there for bob.
      await bob.goto(`${env.base}/chat/${threads[0].id}`);
      await bob.getByRole('alert').waitFor({ timeout: 10_000 });
      expect(await bob.getByRole('alert').textContent()).toMatch(/not found/i);
      expect(await bob.locator('.msg').count()).toBe(0);
      // Bob is no admin: no nodes in his navigation.
      expect(await bob.getByRole('link', { name: 'Nodes' }).count()).toBe(0);
    } finally {
      await bobCtx.close();
    }
  });

  it('in the desktop window, signs its owner in through the preload bridge (no password page) and renews a refused token', async () => {
    const first = await fetch(`${env.base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'admin', password: ADMIN_PASSWORD }) }).then((r) => r.json());
    const second = await apiLogin(env.base, 'admin', ADMIN_PASSWORD);
    const desk = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      // What preload/index.ts exposes, played by the page (no Electron here): the first token,
      // then, asked to renew, the second.
      await desk.addInitScript(`
        window.__calls = [];
        window.cynode = {
          desktop: true,
          getSession: async (o) => {
            window.__calls.push(o && o.renew ? 'renew' : 'get');
            const token = o && o.renew ? ${JSON.stringify(second)} : ${JSON.stringify(first.access_token)};
            return { access_token: token, token_type: 'Bearer', expires_at: Date.now() + 600000, user: { id: 'x', handle: 'admin' } };
          },
          onStatus: () => () => {},
          openExternal: async () => false,
          appInfo: async () => ({}),
        };
      `);
      const win = await desk.newPage();
      await win.goto(`${env.base}/`);
      await win.getByRole('textbox', { name: 'Message' }).waitFor({ timeout: 10_000 });
      expect(await win.getByLabel('Password').count()).toBe(0);
      expect(await win.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
      // The first token's session ends; the next request is refused, and the console asks the shell again.
      await fetch(`${env.base}/v1/auth/logout`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: first.refresh_token }) });
      await win.getByRole('link', { name: 'Tasks' }).click();
      await win.getByRole('heading', { level: 1, name: 'Tasks' }).waitFor();
      await expect.poll(() => win.evaluate(() => (window as any).__calls)).toContain('renew');
      await win.locator('.loading').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
      expect(await win.getByRole('alert').count()).toBe(0);
    } finally {
      await desk.close();
    }
  });

  it('renders every page at a wide and a narrow size (screenshots as artifacts)', async () => {
    const token = await apiLogin(env.base, 'admin', ADMIN_PASSWORD);
    const { tasks } = await apiCall(env.base, token, 'GET', '/v1/tasks');
    const { runs } = await apiCall(env.base, token, 'GET', '/v1/runs');
    const pages: Array<[string, string, string]> = [
      ['chat', '/chat', 'textbox'],
      ['tasks', '/tasks', 'Tasks'],
      ['task', `/tasks/${tasks[0].id}`, tasks[0].task_name],
      ['runs', `/runs/${runs[0].id}`, `Run ${runs[0].id.slice(0, 8)}`],
      ['nodes', '/nodes', 'Nodes'],
      ['admin-users', '/admin/users', 'Administration'],
      ['admin-groups', '/admin/groups', 'Administration'],
      ['admin-keys', '/admin/keys', 'Administration'],
      ['admin-audit', '/admin/audit', 'Administration'],
      ['settings', '/settings', 'Settings'],
    ];
    for (const size of SIZES) {
      await page.setViewportSize({ width: size.width, height: size.height });
      for (const [name, path, heading] of pages) {
        await page.goto(`${env.base}${path}`);
        if (heading === 'textbox') await page.getByRole('textbox', { name: 'Message' }).waitFor();
        else await page.getByRole('heading', { level: 1, name: heading }).waitFor({ timeout: 10_000 });
        await page.locator('.loading').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
        // Nothing overflows the window sideways.
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow, `${name} at ${size.name} overflows by ${overflow}px`).toBeLessThanOrEqual(1);
        await screenshot(page, `${name}-${size.name}`);
      }
    }
    // Dark mode too.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${env.base}/chat`);
    await page.getByRole('textbox', { name: 'Message' }).waitFor();
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).not.toBe('rgb(247, 247, 249)');
    await screenshot(page, 'chat-dark-wide');
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('creates an API key shown once, and the settings show the database and data folder', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${env.base}/admin/keys`);
    await page.getByLabel('Name').fill('e2e-laptop');
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByTestId('new-key');
    await shown.waitFor();
    const key = (await shown.locator('code').textContent())!;
    expect(key).toMatch(/^cyk_/);
    const me = await fetch(`${env.base}/v1/users/me`, { headers: { authorization: `Bearer ${key}` } });
    expect(me.status).toBe(200);
    await page.reload();
    await page.getByRole('cell', { name: 'e2e-laptop' }).waitFor();
    expect(await page.content()).not.toContain(key);

    await page.goto(`${env.base}/settings`);
    await page.getByTestId('database').waitFor();
    expect(await page.getByTestId('database').textContent()).toMatch(/PGlite at .*cynode-console-/);
    expect(await page.getByText('Share on LAN').count()).toBe(1);

    // Share on LAN: the switch takes effect at once and shows what LAN clients use; off closes it.
    const lanSwitch = page.getByRole('switch', { name: 'Share on LAN' });
    expect(await lanSwitch.getAttribute('aria-checked')).toBe('false');
    await lanSwitch.click();
    await page.getByTestId('openai-base-url').waitFor();
    const lanUrl = (await page.getByTestId('lan-url').first().locator('code').textContent())!;
    expect(lanUrl).toMatch(/^http:\/\/.+:\d+$/);
    expect(await page.getByTestId('openai-base-url').locator('code').textContent()).toBe(`${lanUrl}/v1`);
    expect((await fetch(`${lanUrl}/healthz`)).status).toBe(200);
    await screenshot(page, 'settings-lan-shared');
    await lanSwitch.click();
    // This switch, not the agent's (the settings page has both).
    await expect.poll(() => lanSwitch.getAttribute('aria-checked'), { timeout: 10_000 }).toBe('false');
    await expect(fetch(`${lanUrl}/healthz`)).rejects.toThrow();
  });
});
