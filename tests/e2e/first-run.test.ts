import { mkdtemp, rm, stat } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, stopQuietly, type Served } from '../support/cli';
import { CHROMIUM, screenshot } from './harness';

/** A non-loopback address of this machine: how a LAN browser reaches it. */
const LAN_ADDRESS = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

// A fresh `cynode serve` given no CYNODE_ADMIN_PASSWORD, shared on the LAN: at the machine the
// console offers to choose the admin password; a LAN browser is only told where the generated one is.
describe('console: first run without an admin password', () => {
  let dir: string;
  let served: Served | undefined;
  let browser: Browser;
  let port: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cynode-first-run-'));
    served = await serve({ CYNODE_DATA_DIR: dir, CYNODE_EMBEDDED_NODE: '0', CYNODE_HOST: '0.0.0.0' });
    port = new URL(served.gatewayUrl).port;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    if (served) {
      served.child.kill('SIGTERM');
      await Promise.race([served.exited, new Promise((r) => setTimeout(r, 15_000))]);
    }
    await stopQuietly(served);
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it.runIf(LAN_ADDRESS)('on a LAN origin, says where the generated password is and offers no way to choose one', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`http://${LAN_ADDRESS}:${port}/`);
    const hint = page.getByTestId('first-run-hint');
    await hint.waitFor({ timeout: 15_000 });
    expect(await hint.textContent()).toContain('initial-admin-password');
    expect(await page.getByRole('form', { name: 'Set the admin password' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await screenshot(page, 'first-run-lan-wide');
    await page.close();
  });

  it('at the machine, sets the admin password (both entries must match), then signs in with it', async () => {
    const generated = served!.printedPassword!;
    expect(generated).toBeTruthy();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    const form = page.getByRole('form', { name: 'Set the admin password' });
    await form.waitFor({ timeout: 15_000 });
    await screenshot(page, 'first-run-setup-wide');

    await page.getByLabel('New password').fill('chosen-admin-pw-1');
    await page.getByLabel('Repeat the password').fill('chosen-admin-pw-2');
    await page.getByRole('button', { name: 'Set the password and sign in' }).click();
    await expect(page.getByRole('alert').textContent({ timeout: 5_000 })).resolves.toMatch(/differ/);

    await page.getByLabel('Repeat the password').fill('chosen-admin-pw-1');
    await page.getByRole('button', { name: 'Set the password and sign in' }).click();
    await page.getByRole('textbox', { name: 'Message' }).waitFor({ timeout: 15_000 });
    expect(await page.locator('.who').textContent()).toMatch(/Admin/);

    // Done for good: the file is gone, the generated password opens nothing, the chosen one does.
    await expect(stat(join(dir, 'initial-admin-password'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await (await fetch(`${served!.gatewayUrl}/v1/setup`)).json()).toEqual({ first_run_password_pending: false });
    const login = (password: string) => fetch(`${served!.gatewayUrl}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'admin', password }) });
    expect((await login(generated)).status).toBe(401);
    expect((await login('chosen-admin-pw-1')).status).toBe(200);

    // A new visitor at the machine now just signs in.
    const fresh = await browser.newPage();
    await fresh.goto(`http://127.0.0.1:${port}/`);
    await fresh.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: 15_000 });
    expect(await fresh.getByRole('form', { name: 'Set the admin password' }).count()).toBe(0);
    await fresh.close();
    await page.close();
    expect(pageErrors).toEqual([]);
  });
});
