/**
 * The console: production bundle size (raw and gzip, from out/renderer) and first meaningful
 * paint of the chat page in Debian's Chromium against a real `cynode serve` on this machine.
 * "Meaningful" = the composer and the thread list (or its empty state) are on screen for a
 * signed-in user; FCP and LCP are reported beside it. Cold loads: a new browser context each.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { REPO_ROOT } from '../support/cli';
import { ADMIN_PASSWORD, startConsoleEnv } from '../e2e/harness';
import { ms, summarize } from './stats';

const SAMPLES = Number(process.env.BENCH_SAMPLES || 15);

async function bundleSizes(): Promise<void> {
  const dir = join(REPO_ROOT, 'out', 'renderer');
  const files = [join(dir, 'index.html'), ...(await readdir(join(dir, 'assets'))).map((f) => join(dir, 'assets', f))];
  let raw = 0;
  let gz = 0;
  console.log('| file | raw | gzip |\n|---|---:|---:|');
  for (const f of files) {
    const body = await readFile(f);
    const z = gzipSync(body, { level: 9 }).length;
    raw += body.length;
    gz += z;
    console.log(`| ${f.slice(dir.length + 1)} | ${(body.length / 1024).toFixed(1)} KiB | ${(z / 1024).toFixed(1)} KiB |`);
  }
  console.log(`| **total** | **${(raw / 1024).toFixed(1)} KiB** | **${(gz / 1024).toFixed(1)} KiB** |\n`);
}

async function firstPaint(): Promise<void> {
  const env = await startConsoleEnv({ sandbox: false });
  try {
    const fmp: number[] = [];
    const fcp: number[] = [];
    const lcp: number[] = [];
    for (let i = 0; i < SAMPLES + 1; i++) {
      // Signed in as a returning browser is: a refresh token in localStorage.
      const res = await fetch(`${env.base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'admin', password: ADMIN_PASSWORD }) });
      const { refresh_token } = (await res.json()) as { refresh_token: string };
      const ctx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
      // A string, not a function: tsx would wrap named functions in a helper the page lacks.
      await ctx.addInitScript(`
        localStorage.setItem('cynode.refresh', ${JSON.stringify(refresh_token)});
        new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__lcp = e.startTime; }).observe({ type: 'largest-contentful-paint', buffered: true });
        new MutationObserver(() => {
          if (window.__fmp === undefined && document.querySelector('textarea[aria-label="Message"]') && document.querySelector('.thread-list ul, .thread-list .empty')) {
            // The frame that shows it: the next animation frame after the DOM has it.
            requestAnimationFrame(() => { window.__fmp ??= performance.now(); });
          }
        }).observe(document, { subtree: true, childList: true });
      `);
      const page = await ctx.newPage();
      await page.goto(`${env.base}/chat`);
      await page.waitForFunction(() => (window as unknown as { __fmp?: number }).__fmp !== undefined, undefined, { timeout: 15_000 });
      await page.waitForTimeout(50);
      const m = await page.evaluate(() => {
        const w = window as unknown as { __fmp: number; __lcp?: number };
        const paint = performance.getEntriesByName('first-contentful-paint')[0];
        return { fmp: w.__fmp, fcp: paint?.startTime ?? NaN, lcp: w.__lcp ?? NaN };
      });
      await ctx.close();
      if (i === 0) continue; // the first load warms the server (JIT, OS file cache), not the browser
      fmp.push(m.fmp);
      fcp.push(m.fcp);
      lcp.push(m.lcp);
    }
    const row = (name: string, xs: number[]) => {
      const s = summarize(xs);
      console.log(`| ${name} | ${s.n} | ${ms(s.p50)} | ${ms(s.p95)} |`);
    };
    console.log('Chat page, cold browser context per load, signed in by refresh token (1280x800):\n');
    console.log('| metric | n | p50 | p95 |\n|---|---:|---:|---:|');
    row('first contentful paint (sign-in check spinner)', fcp);
    row('largest contentful paint', lcp);
    row('first meaningful paint (composer + threads)', fmp);
    const p50 = summarize(fmp).p50;
    console.log(`\nFMP p50 ${p50.toFixed(0)} ms: ${p50 < 1000 ? 'under' : 'OVER'} the 1 s goal.`);
  } finally {
    await env.close();
  }
}

export async function consoleBench(): Promise<void> {
  await bundleSizes();
  await firstPaint();
}
