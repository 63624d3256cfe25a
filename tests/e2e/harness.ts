import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startOllamaFixture, type OllamaFixture } from '../fixtures/ollama-fixture';
import { REPO_ROOT, serve, stopQuietly, type Served } from '../support/cli';
import { SANDBOX_IMAGE, ensureSandboxImage } from '../support/docker';
import { until } from '../support/until';

/** Debian's Chromium (`apt-get install chromium`); Playwright's own download cannot reach us here. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ADMIN_PASSWORD = 'console-admin-pw-1';
export const SCREENSHOTS = join(REPO_ROOT, 'test-artifacts', 'screenshots');
export const SIZES = [
  { name: 'wide', width: 1280, height: 800 },
  { name: 'narrow', width: 390, height: 844 },
] as const;

export interface ConsoleEnv {
  served: Served;
  base: string;
  ollama: OllamaFixture;
  browser: Browser;
  close(): Promise<void>;
}

/**
 * A real `cynode serve` (the built CLI) with its embedded node on the Docker engine and the
 * Ollama fixture as its inference, ready (a node serves a model), and a headless Chromium.
 */
export async function startConsoleEnv(opts: { tokenDelayMs?: number; sandbox?: boolean; env?: Record<string, string> } = {}): Promise<ConsoleEnv> {
  if (opts.sandbox !== false) await ensureSandboxImage();
  const ollama = await startOllamaFixture({ models: ['llama3:8b', 'qwen2.5:0.5b'], behaviour: { tokenDelayMs: opts.tokenDelayMs ?? 0 } });
  const dir = await mkdtemp(join(tmpdir(), 'cynode-console-'));
  let served: Served | undefined;
  let browser: Browser | undefined;
  try {
    served = await serve({ CYNODE_DATA_DIR: dir, CYNODE_ADMIN_PASSWORD: ADMIN_PASSWORD, OLLAMA_HOST: ollama.url, CYNODE_SANDBOX_IMAGE: SANDBOX_IMAGE, CYNODE_NODE_HEARTBEAT_SECONDS: '2', ...opts.env });
    const base = served.gatewayUrl;
    await until('the embedded node to serve inference', async () => (await fetch(`${base}/readyz`)).ok, 60_000, 200);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const s = served;
    const b = browser;
    return {
      served: s,
      base,
      ollama,
      browser: b,
      async close() {
        await b.close().catch(() => {});
        s.child.kill('SIGTERM');
        await Promise.race([s.exited, new Promise((r) => setTimeout(r, 15_000))]);
        await stopQuietly(s);
        await ollama.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await browser?.close().catch(() => {});
    await stopQuietly(served);
    await ollama.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Signs in through the sign-in page and waits for the chat page. */
export async function signIn(page: Page, base: string, handle: string, password: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByLabel('User').fill(handle);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('textbox', { name: 'Message' }).waitFor({ timeout: 15_000 });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

export async function apiLogin(base: string, handle: string, password: string): Promise<string> {
  const res = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle, password }) });
  if (!res.ok) throw new Error(`login ${handle}: ${res.status}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

export async function apiCall<T = any>(base: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (res.status === 204 ? undefined : await res.json()) as T;
}
