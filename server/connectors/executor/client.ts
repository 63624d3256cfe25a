import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Db, Queryable } from '../../db';
import type { MasterKey } from '../../vault/master-key';
import type { CredentialSecret, HealthResult } from '../types/contract';
import type { ConnectorExecutor, CredentialBinding, HealthCall, OperationCall, OperationOutcome, OperationsOutcome, SealedCredential } from '../executor-api';
import { currentPublicKey, insertExecutorKey, listExecutorKeys, replaceSealedPrivateKey, retireExecutorKeysExcept } from './key-store';
import { EXECUTOR_VAULT_PURPOSE, kidOfJwe, type AnswerOf, type ExecutorAnswer, type ExecutorRequest } from './protocol';
import { sealCredentialTo } from './seal';

/*
 * The gateway's handle on the connector executor process. It seals with the executor's public key
 * (read from the database) and forwards calls over the IPC channel; it has no code path to a
 * private key or a credential's plaintext (the executor's modules are not in this module graph).
 *
 * The process starts with the server and stops with it. If it dies, the calls in flight fail
 * closed at once (transient) and the next call starts a new one.
 */

export interface ExecutorOptions {
  db: Db;
  masterKey: MasterKey;
  logLevel: string;
  /** Where the executor's log lines (its stderr) go; by default into the server's log stream (stdout, where pino writes). */
  onLog?: (chunk: string) => void;
  /** The executor's environment; the server's, without its secrets, by default. */
  env?: NodeJS.ProcessEnv;
}

/** How long the executor may take to start and open its keys. */
const START_TIMEOUT_MS = 20_000;
/** How long a call may outlast its own deadline before the gateway stops waiting for the executor. */
const CALL_SLACK_MS = 15_000;
/** Attempts the gateway allows for when it computes how long to wait for a call. */
const MAX_ATTEMPTS = 5;

type ExecutorRequestBody = ExecutorRequest extends infer R ? (R extends ExecutorRequest ? Omit<R, 'id'> : never) : never;

interface Pending {
  child: ChildProcess;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** After a start that failed, calls fail at once for this long instead of each starting a process. */
const RESTART_PAUSE_MS = 2_000;

class ExecutorGone extends Error {
  override readonly name = 'ExecutorGone';
}

/** Starts the executor process (creating its first key pair on a new installation). */
export async function startConnectorExecutor(options: ExecutorOptions): Promise<ProcessConnectorExecutor> {
  const executor = new ProcessConnectorExecutor(options);
  await executor.ready();
  return executor;
}

export class ProcessConnectorExecutor implements ConnectorExecutor {
  private child: ChildProcess | undefined;
  private starting: Promise<ChildProcess> | undefined;
  private readonly pending = new Map<number, Pending>();
  private lastId = 0;
  private closed = false;
  private failedStart: { at: number; error: Error } | undefined;
  /** The kids the running executor holds. */
  private held = new Set<string>();

  constructor(private readonly options: ExecutorOptions) {}

  /** Resolves once a process runs and holds every stored key pair. */
  async ready(): Promise<void> {
    await this.process();
  }

  /** The running process's id (for tests and diagnostics). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async seal(secret: CredentialSecret, binding: CredentialBinding): Promise<string> {
    const current = (await currentPublicKey(this.options.db)) ?? (await this.ensureKey());
    return sealCredentialTo(current.kid, current.publicJwk, secret, binding);
  }

  async invoke(call: OperationCall, signal?: AbortSignal, gate?: Promise<unknown>): Promise<OperationOutcome> {
    const started = Date.now();
    try {
      await this.holdKeyOf(call.credential);
      return await this.call({ kind: 'invoke', call, ...(gate ? { gated: true } : {}) }, call.timeoutMs * MAX_ATTEMPTS + CALL_SLACK_MS, signal, gate);
    } catch (e) {
      return { ok: false, failure: 'transient', message: messageOf(e), attempts: 0, durationMs: Date.now() - started };
    }
  }

  async health(call: HealthCall, signal?: AbortSignal): Promise<HealthResult> {
    try {
      await this.holdKeyOf(call.credential);
      return await this.call({ kind: 'health', call }, call.timeoutMs + CALL_SLACK_MS, signal);
    } catch (e) {
      return { ok: false, failure: 'transient', message: messageOf(e) };
    }
  }

  async operations(call: HealthCall, signal?: AbortSignal): Promise<OperationsOutcome> {
    try {
      await this.holdKeyOf(call.credential);
      return await this.call({ kind: 'operations', call }, call.timeoutMs + CALL_SLACK_MS, signal);
    } catch (e) {
      return { ok: false, failure: 'transient', message: messageOf(e) };
    }
  }

  /**
   * A new executor key pair: credentials are sealed to it from now on; the older pairs are
   * retired but still open what was sealed to them until `rewrap` has moved it. Returns the new kid.
   */
  async rotateKey(): Promise<string> {
    const record = await this.call({ kind: 'generate' }, START_TIMEOUT_MS);
    await this.options.db.transaction(async (tx) => {
      await insertExecutorKey(tx, record);
      await retireExecutorKeysExcept(tx, record.kid);
    });
    this.held.add(record.kid);
    return record.kid;
  }

  /**
   * The given credentials sealed again, inside the executor, to the current key pair (same
   * bindings); the caller stores them in place of the old ones. The gateway sees ciphertext only.
   */
  async rewrap(credentials: SealedCredential[]): Promise<string[]> {
    const current = (await currentPublicKey(this.options.db)) ?? (await this.ensureKey());
    for (const c of credentials) await this.holdKeyOf(c);
    await this.holdKid(current.kid);
    return this.call({ kind: 'rewrap', credentials, kid: current.kid }, START_TIMEOUT_MS + credentials.length * 100);
  }

  /**
   * Every stored private key sealed again under a new master key (master key rotation), in the
   * caller's transaction. The keys are opened and sealed inside the executor: this process sees
   * only the sealed forms. Returns how many were moved.
   */
  async resealKeys(tx: Queryable, next: MasterKey): Promise<number> {
    const keys = await listExecutorKeys(tx, { forUpdate: true });
    const resealed = await this.call({ kind: 'reseal', vaultKey: vaultKeyOf(next), keys }, START_TIMEOUT_MS);
    for (const key of resealed) await replaceSealedPrivateKey(tx, key.kid, key.privateKeySealed);
    return resealed.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    this.failAll(new ExecutorGone('The connector executor is shutting down'));
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Closing the channel ends the executor; a kill covers one that does not listen.
    if (child.connected) child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }

  /** The running process, started (again) if there is none. */
  private process(): Promise<ChildProcess> {
    if (this.closed) return Promise.reject(new ExecutorGone('The connector executor is shut down'));
    if (this.child) return Promise.resolve(this.child);
    if (this.failedStart && Date.now() - this.failedStart.at < RESTART_PAUSE_MS) return Promise.reject(this.failedStart.error);
    this.starting ??= this.spawn()
      .then(
        (child) => ((this.failedStart = undefined), child),
        (err: Error) => {
          this.failedStart = { at: Date.now(), error: err };
          throw err;
        },
      )
      .finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async spawn(): Promise<ChildProcess> {
    const keys = await listExecutorKeys(this.options.db);
    const { entry, execArgv } = executorEntry();
    const child = fork(entry, [], {
      execArgv,
      env: this.options.env ?? executorEnvironment(process.env),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    const onLog = this.options.onLog ?? ((chunk: string) => process.stdout.write(chunk));
    // Whole lines only, so that they never interleave with the server's own.
    let partial = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      const end = chunk.lastIndexOf('\n');
      if (end < 0) return void (partial += chunk);
      onLog(partial + chunk.slice(0, end + 1));
      partial = chunk.slice(end + 1);
    });
    child.on('message', (answer: ExecutorAnswer) => this.answer(answer));
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
      this.held = new Set();
      this.failAll(new ExecutorGone('The connector executor stopped unexpectedly; the operation may not have completed. Try again.'), child);
    });
    child.on('error', () => child.kill('SIGKILL'));
    try {
      await this.send(child, { kind: 'start', vaultKey: vaultKeyOf(this.options.masterKey), keys, logLevel: this.options.logLevel }, START_TIMEOUT_MS);
      // Closed while it started: it must not outlive the close.
      if (this.closed) throw new ExecutorGone('The connector executor is shut down');
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    }
    this.child = child;
    this.held = new Set(keys.map((k) => k.kid));
    if (keys.length === 0) await this.ensureKey();
    return child;
  }

  /** The first key pair of an installation: generated by the executor, stored by the gateway. */
  private async ensureKey(): Promise<{ kid: string; publicJwk: JsonWebKey }> {
    const record = await this.call({ kind: 'generate' }, START_TIMEOUT_MS);
    await insertExecutorKey(this.options.db, record);
    this.held.add(record.kid);
    // Another gateway on the same database may have stored its own first: everyone seals to the newest.
    const current = await currentPublicKey(this.options.db);
    if (current) await this.holdKid(current.kid);
    return current ?? record;
  }

  /** A credential sealed to a key pair made elsewhere (another gateway's rotation): load it first. */
  private async holdKeyOf(credential: SealedCredential | null): Promise<void> {
    const kid = credential ? kidOfJwe(credential.jwe) : null;
    if (kid) await this.holdKid(kid);
  }

  private async holdKid(kid: string): Promise<void> {
    await this.process();
    if (this.held.has(kid)) return;
    const keys = await listExecutorKeys(this.options.db);
    await this.call({ kind: 'keys', keys }, START_TIMEOUT_MS);
    for (const k of keys) this.held.add(k.kid);
  }

  private async call<K extends ExecutorRequestBody['kind']>(body: Extract<ExecutorRequestBody, { kind: K }>, timeoutMs: number, signal?: AbortSignal, gate?: Promise<unknown>): Promise<AnswerOf<K>> {
    const child = await this.process();
    return this.send(child, body, timeoutMs, signal, gate) as Promise<AnswerOf<K>>;
  }

  /** With a `gate`, a `go` follows the request once it resolves, a `cancel` if it rejects. */
  private send(child: ChildProcess, body: ExecutorRequestBody, timeoutMs: number, signal?: AbortSignal, gate?: Promise<unknown>): Promise<unknown> {
    if (signal?.aborted) return Promise.reject(new ExecutorGone('The operation was cancelled'));
    const id = ++this.lastId;
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = () => {
        if (child.connected) child.send({ id: ++this.lastId, kind: 'cancel', target: id } satisfies ExecutorRequest);
      };
      // The executor enforces every deadline itself; this one only keeps a stuck executor from holding the caller.
      const timer = setTimeout(() => settle(() => reject(new ExecutorGone('The connector executor did not answer in time'))), timeoutMs);
      const settle = (done: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
        done();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, { child, resolve: (v) => settle(() => resolve(v)), reject: (e) => settle(() => reject(e)) });
      if (!child.connected) return this.pending.get(id)!.reject(new ExecutorGone('The connector executor is not running'));
      child.send({ ...body, id } as ExecutorRequest, (err) => {
        if (err) this.pending.get(id)?.reject(new ExecutorGone('The connector executor is not running'));
      });
      gate?.then(() => {
        if (child.connected) child.send({ id: ++this.lastId, kind: 'go', target: id } satisfies ExecutorRequest);
      }, onAbort);
    });
  }

  private answer(answer: ExecutorAnswer): void {
    const waiting = this.pending.get(answer.id);
    if (!waiting) return;
    if (answer.ok) waiting.resolve(answer.value);
    else waiting.reject(new Error(answer.message));
  }

  /** Fails the calls waiting on `child` (every call when none is named). */
  private failAll(err: Error, child?: ChildProcess): void {
    for (const p of [...this.pending.values()]) if (!child || p.child === child) p.reject(err);
  }
}

/** The key the executor's vault seals its private keys under: derived from the master key, never the master key itself. */
function vaultKeyOf(masterKey: MasterKey): string {
  return Buffer.from(masterKey.derive(EXECUTOR_VAULT_PURPOSE)).toString('base64');
}

function messageOf(e: unknown): string {
  return e instanceof ExecutorGone ? e.message : 'The connector executor could not run the call';
}

/** The server's settings the executor itself reads: where connectors may go and which MCP servers they may start. */
const EXECUTOR_SETTINGS = new Set(['CYNODE_CONNECTOR_ALLOW', 'CYNODE_MCP_COMMANDS']);

/**
 * The executor's environment: the server's, without the secrets it was configured with (the
 * master key, database URL, passwords): the executor needs none of them. It keeps its own
 * settings; an MCP server it starts gets none of them (mcp-session.ts gives it an explicit env).
 */
export function executorEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (/^(CYNODE_|DATABASE_URL$|PG)/.test(name) && !EXECUTOR_SETTINGS.has(name)) continue;
    out[name] = value;
  }
  // In the Electron app, fork runs the Electron binary: as plain Node.
  if (process.versions.electron) out.ELECTRON_RUN_AS_NODE = '1';
  return out;
}

/**
 * Where the executor's entry is. From the sources (tests), main.ts next to this module, run
 * through tsx. In the build, electron-vite emits it as out/main/connector-executor.js, an entry of
 * its own (electron.vite.config.ts), next to the chunk holding this module or one folder up.
 */
function executorEntry(): { entry: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    return { entry: join(dirname(here), 'main.ts'), execArgv: ['--import', tsx] };
  }
  const candidates = [join(dirname(here), 'connector-executor.js'), join(dirname(here), '..', 'connector-executor.js')];
  const entry = candidates.find((c) => existsSync(c)) ?? candidates[0]!;
  return { entry, execArgv: [] };
}
