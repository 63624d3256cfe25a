import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { ADMIN_PASSWORD, apiCall, apiLogin, screenshot, signIn, startConsoleEnv, type ConsoleEnv } from './harness';

const PM = 'cynodeai.pm';
/** The harness's second model, given Ollama's `tools` capability: the one the agent runs on. */
const TOOLS_MODEL = 'qwen2.5:0.5b';
const APPROVAL = 'agents.project_manager.approval';
const MODEL_KEY = 'agents.project_manager.model.local_default_ollama_model';

// The project-manager agent in the console: a real `cynode serve` whose embedded node runs the
// agent's task in a Docker sandbox, the Ollama fixture scripted to call the tools, Chromium.
describe('the agent in the console', () => {
  let env: ConsoleEnv;
  let ctx: BrowserContext;
  let page: Page;
  let token: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    env = await startConsoleEnv();
    // Before anyone asks, so the gateway learns it when it first asks /api/show.
    env.ollama.capabilities.set(TOOLS_MODEL, ['completion', 'tools']);
    token = await apiLogin(env.base, 'admin', ADMIN_PASSWORD);
    ctx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await signIn(page, env.base, 'admin', ADMIN_PASSWORD);
  }, 180_000);

  afterAll(async () => {
    await env?.close();
  }, 60_000);

  it('offers cynodeai.pm as the default model, streams its progress, and shows its steps as collapsible tool calls linked to the task', async () => {
    await page.goto(`${env.base}/chat`);
    const picker = page.getByRole('combobox', { name: 'Model' });
    await expect.poll(() => picker.inputValue(), { timeout: 20_000 }).toBe(PM);

    env.ollama.setBehaviour({ toolCalls: [{ name: 'task.create', arguments: { prompt: 'echo hello', input_mode: 'commands', task_name: 'agent-console-echo' } }] }, { once: true });
    env.ollama.setBehaviour({ toolCalls: [{ name: 'task.result', arguments: { task_id: 'agent-console-echo', wait_seconds: 30 } }], toolCallsAnyTurn: true }, { once: true });
    // Record what the streaming answer shows: the progress lines arrive before the answer.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as any).__answers = seen;
      new MutationObserver(() => {
        // Each progress line on a line of its own, while the turn is still streaming.
        const lines = [...document.querySelectorAll('.msg.assistant[aria-busy="true"] .progress-lines li')].map((li) => li.textContent ?? '');
        const shown = lines.join('\n');
        if (shown && seen.at(-1) !== shown) seen.push(shown);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('Run `echo hello` and tell me what it printed');
    await box.press('Enter');

    // The stored turn: a step per tool call, then the answer with what the task printed.
    const create = page.locator('.agent-step[data-tool="task.create"]');
    await create.waitFor({ timeout: 60_000 });
    const answer = page.locator('.msg.assistant:not(.agent)').last();
    await expect.poll(() => answer.textContent(), { timeout: 30_000 }).toContain('hello');
    const seen = (await page.evaluate(() => (window as any).__answers)) as string[];
    expect(seen.some((t) => t.split('\n').some((l) => l.startsWith('▸ task.create {"prompt":"echo hello"'))), `streamed: ${JSON.stringify(seen)}`).toBe(true);
    expect(seen.some((t) => t.split('\n').includes('✓ task.create')), `streamed: ${JSON.stringify(seen)}`).toBe(true);

    expect(await create.locator('.step-status').textContent()).toBe('✓');
    expect(await create.locator('.step-args').textContent()).toContain('prompt: string');
    expect(await page.locator('.agent-step[data-tool="task.result"] .step-status').textContent()).toBe('✓');
    // Collapsed until opened; open, it shows the result and links to the task the step created.
    expect(await create.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    await create.locator('summary').click();
    const link = create.getByRole('link', { name: /^Task / });
    await link.waitFor();
    const task = await apiCall<{ id: string; status: string }>(env.base, token, 'GET', '/v1/tasks/agent-console-echo');
    expect(task.status).toBe('completed');
    expect(await link.getAttribute('href')).toBe(`/tasks/${task.id}`);
    await screenshot(page, 'agent-steps-wide');
    await link.click();
    await expect.poll(() => page.url()).toMatch(new RegExp(`/tasks/${task.id}$`));
  });

  it('keeps the approval switch across a reload, as the user-scope preference; on, the agent holds its mutating step and the card approves it', async () => {
    await page.goto(`${env.base}/settings`);
    const toggle = page.getByRole('switch', { name: 'Agent asks before changing things' });
    await expect.poll(() => toggle.isEnabled(), { timeout: 15_000 }).toBe(true);
    expect(await toggle.getAttribute('aria-checked')).toBe('false');
    await toggle.click();
    await expect.poll(() => toggle.getAttribute('aria-checked')).toBe('true');
    const stored = await apiCall<{ value: unknown; version: number }>(env.base, token, 'GET', `/v1/prefs/${APPROVAL}?scope_type=user`);
    expect(stored).toMatchObject({ value: 'mutating', version: 1 });

    await page.reload();
    const again = page.getByRole('switch', { name: 'Agent asks before changing things' });
    await expect.poll(() => again.isEnabled(), { timeout: 15_000 }).toBe(true);
    expect(await again.getAttribute('aria-checked')).toBe('true');

    // On, the agent's mutating call is held: the step shows ✗ approval_pending and a card to decide.
    await page.goto(`${env.base}/chat`);
    await expect.poll(() => page.getByRole('combobox', { name: 'Model' }).inputValue(), { timeout: 20_000 }).toBe(PM);
    env.ollama.setBehaviour({ toolCalls: [{ name: 'task.create', arguments: { prompt: 'echo held', input_mode: 'commands', task_name: 'agent-console-held' } }] }, { once: true });
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('Run `echo held`');
    await box.press('Enter');
    const held = page.locator('.agent-step[data-tool="task.create"]');
    await held.waitFor({ timeout: 30_000 });
    expect(await held.locator('.step-status').textContent()).toBe('✗');
    expect(await held.locator('.step-error').textContent()).toBe('approval_pending');
    await expect(apiCall(env.base, token, 'GET', '/v1/tasks/agent-console-held')).rejects.toThrow(/404/);
    // Approving in the card runs the held call now: the task exists and the card says so.
    const card = page.getByRole('group', { name: 'Approval for task.create' });
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.locator('.approval-status').waitFor({ timeout: 15_000 });
    expect(await card.locator('.approval-status').textContent()).toMatch(/^Approved/);
    await expect.poll(async () => (await apiCall<{ prompt: string }>(env.base, token, 'GET', '/v1/tasks/agent-console-held')).prompt, { timeout: 15_000 }).toBe('echo held');
    // After a reload the decided call offers no buttons.
    await page.reload();
    await page.locator('.agent-step[data-tool="task.create"]').last().waitFor({ timeout: 15_000 });
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);

    await page.goto(`${env.base}/settings`);
    await expect.poll(() => again.isEnabled(), { timeout: 15_000 }).toBe(true);
    await again.click();
    await expect.poll(() => again.getAttribute('aria-checked')).toBe('false');
    expect(await apiCall(env.base, token, 'GET', `/v1/prefs/${APPROVAL}?scope_type=user`)).toMatchObject({ value: 'never', version: 2 });
  });

  it("writes the admin's choice of the agent's model as the system preference (automatic = null)", async () => {
    const select = page.getByRole('combobox', { name: 'Agent model' });
    await select.waitFor({ timeout: 15_000 });
    const offered = await select.locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(offered).toEqual(expect.arrayContaining(['', TOOLS_MODEL]));
    expect(offered).not.toContain(PM);

    await select.selectOption(TOOLS_MODEL);
    await expect.poll(async () => (await apiCall<{ value: unknown }>(env.base, token, 'GET', `/v1/prefs/${MODEL_KEY}?scope_type=system`).catch(() => ({ value: undefined }))).value, { timeout: 10_000 }).toBe(TOOLS_MODEL);
    await expect.poll(() => select.isEnabled()).toBe(true);
    await select.selectOption('');
    await expect.poll(async () => (await apiCall<{ value: unknown; version: number }>(env.base, token, 'GET', `/v1/prefs/${MODEL_KEY}?scope_type=system`)).version, { timeout: 10_000 }).toBe(2);
    expect(await apiCall(env.base, token, 'GET', `/v1/prefs/${MODEL_KEY}?scope_type=system`)).toMatchObject({ value: null });
    await page.reload();
    await expect.poll(() => page.getByRole('combobox', { name: 'Agent model' }).inputValue(), { timeout: 15_000 }).toBe('');
    await screenshot(page, 'agent-settings-wide');
    expect(pageErrors).toEqual([]);
  });
});
