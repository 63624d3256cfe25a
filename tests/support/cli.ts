import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The built `cynode` command, exactly as a user runs it (`npm run build` first). */
export const CYNODE_BIN = fileURLToPath(new URL('../../bin/cynode.js', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliRun {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  exited: Promise<Exit>;
  /** Resolves with the first match of `pattern` in stdout; rejects if the process ends first. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/**
 * Runs `node bin/cynode.js ...args` with only the given environment (plus PATH and HOME), so the
 * developer's own CYNODE_* or DATABASE_URL never leak into a test.
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): CliRun {
  const child = spawn(process.execPath, [CYNODE_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const l of listeners) l();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  let ended = false;
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      ended = true;
      for (const l of listeners) l();
      resolve({ code, signal });
    });
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    waitForStdout(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = stdout.match(pattern);
          if (m) return done(() => resolve(m));
          if (ended) return done(() => reject(new Error(`cynode exited before printing ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`cynode did not print ${pattern} within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
  };
}

export interface Served extends CliRun {
  gatewayUrl: string;
  controlUrl: string;
  /** The generated first-run password, when this start printed one. */
  printedPassword: string | undefined;
}

/**
 * `cynode serve` on ports the OS picks (port 0), read back from the start banner the way a user
 * reads it. Resolves once the banner is complete, i.e. both listeners are up.
 */
export async function serve(env: Record<string, string | undefined>, args: string[] = []): Promise<Served> {
  const run = runCli(['serve', ...args], { CYNODE_GATEWAY_PORT: '0', CYNODE_CONTROL_PORT: '0', CYNODE_LOG_LEVEL: 'warn', ...env });
  try {
    const [, gatewayUrl] = await run.waitForStdout(/^\s*gateway\s+(http:\/\/\S+)/m);
    const [, controlUrl] = await run.waitForStdout(/^\s*control plane\s+(http:\/\/\S+)/m);
    await run.waitForStdout(/^\s*data directory .*\n/m);
    // The password block is part of the same banner write; give it a moment only if announced.
    let printedPassword: string | undefined;
    if (/First run: created user "admin" with this password/.test(run.stdout)) {
      printedPassword = (await run.waitForStdout(/^\n {6}(\S+)\n/m))[1];
    }
    return Object.assign(run, { gatewayUrl: gatewayUrl!, controlUrl: controlUrl!, printedPassword });
  } catch (err) {
    run.child.kill('SIGKILL');
    throw err;
  }
}

/** Stops a served process if a test left it running (after a failure). */
export async function stopQuietly(run: CliRun | undefined): Promise<void> {
  if (!run || run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill('SIGKILL');
  await run.exited;
}

/** True when nothing listens on 127.0.0.1:port any more (we can bind it ourselves). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Holds 127.0.0.1:<some port> until released, to play "another program uses the port". */
export function occupyPort(): Promise<{ port: number; release(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      resolve({ port, release: () => new Promise<void>((r) => srv.close(() => r())) });
    });
  });
}

export async function login(baseUrl: string, handle: string, password: string): Promise<{ status: number; token?: string }> {
  const res = await fetch(`${baseUrl}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle, password }) });
  const body = (await res.json()) as { access_token?: string };
  return { status: res.status, token: body.access_token };
}
