import { hostname } from 'node:os';
import type { HealthCall, OperationCall } from '../executor-api';
import { KeyRing } from './private-keys';
import type { ExecutorAnswer, ExecutorKeyRecord, ExecutorRequest } from './protocol';
import { runHealth, runOperation, runOperations } from './run';

/*
 * The connector executor process (docs/decisions/0004-vault-format.md), forked by the gateway
 * (client.ts) with an IPC channel. It alone opens connector credentials. It takes its vault key
 * from the first message, never from argv or the environment, and ends when the channel closes,
 * so it never outlives the gateway that started it.
 *
 * Its log (JSON lines on stderr) names calls by request id, connector type, operation and
 * outcome; never a parameter, a configuration, a credential or a result.
 */

/** The server's log levels and their numbers, as its pino lines carry them. */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
let minLevel = LEVELS.info!;

function log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields: Record<string, string | number | boolean | undefined> = {}): void {
  const value = LEVELS[level]!;
  if (value < minLevel) return;
  process.stderr.write(JSON.stringify({ level: value, time: Date.now(), pid: process.pid, hostname: hostname(), name: 'connector-executor', msg, ...fields }) + '\n');
}

let ring: KeyRing | undefined;
let records: ExecutorKeyRecord[] = [];
/** Calls in flight, by request id, so that a cancel can abort them. */
const running = new Map<number, AbortController>();
/** Gated calls waiting for their `go`, by request id. */
const gates = new Map<number, () => void>();

function send(answer: ExecutorAnswer): void {
  // A gateway that has gone away cannot be answered: the executor ends with it (with a
  // callback, a failed send is not an unhandled 'error' event that prints a stack trace).
  if (process.connected) process.send!(answer, undefined, undefined, (error) => {
    if (error) process.exit(0);
  });
}

function keys(): KeyRing {
  if (!ring) throw new Error('the executor has not been started');
  return ring;
}

async function handle(request: ExecutorRequest): Promise<unknown> {
  switch (request.kind) {
    case 'start':
      minLevel = LEVELS[request.logLevel] ?? LEVELS.info!;
      ring = new KeyRing(request.vaultKey);
      await ring.load(request.keys);
      records = request.keys;
      log('debug', 'connector executor started', { keys: request.keys.length });
      return null;
    case 'keys':
      await keys().load(request.keys);
      records = request.keys;
      return null;
    case 'generate': {
      const record = await keys().generate();
      records = [...records, record];
      log('info', 'connector executor key pair generated', { kid: record.kid });
      return record;
    }
    case 'invoke': {
      // Registered before anything awaits, so that a `go` right behind this message finds it.
      const gate = request.gated ? new Promise<void>((resolve) => gates.set(request.id, resolve)) : undefined;
      return track(request.id, (signal) => invoke(request.call, signal, gate)).finally(() => gates.delete(request.id));
    }
    case 'go':
      gates.get(request.target)?.();
      return null;
    case 'health':
      return track(request.id, (signal) => health(request.call, signal));
    case 'operations':
      return track(request.id, (signal) => operations(request.call, signal));
    case 'cancel':
      running.get(request.target)?.abort();
      return null;
    case 'rewrap': {
      const target = records.find((r) => r.kid === request.kid);
      if (!target) throw new Error(`no executor key ${request.kid}`);
      const ring = keys();
      return Promise.all(request.credentials.map((c) => ring.rewrap(c, target.kid, target.publicJwk)));
    }
    case 'reseal':
      // After this the executor's vault is the new one: it is closed once the rotation is done.
      return keys().reseal(request.keys, request.vaultKey);
  }
}

async function track<T>(id: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  running.set(id, controller);
  try {
    return await run(controller.signal);
  } finally {
    running.delete(id);
  }
}

async function invoke(call: OperationCall, signal: AbortSignal, gate?: Promise<void>) {
  const outcome = await runOperation(call, (c) => keys().open(c), signal, process.env, gate);
  const fields = { requestId: call.requestId, instanceId: call.instanceId, type: call.type, operation: call.operation, attempts: outcome.attempts, durationMs: outcome.durationMs };
  if (outcome.ok) log('info', 'connector operation succeeded', fields);
  else log('warn', 'connector operation failed', { ...fields, failure: outcome.failure, providerStatus: outcome.providerStatus });
  return outcome;
}

async function health(call: HealthCall, signal: AbortSignal) {
  const result = await runHealth(call, (c) => keys().open(c), signal);
  log(result.ok ? 'debug' : 'info', 'connector health checked', { requestId: call.requestId, instanceId: call.instanceId, type: call.type, ok: result.ok, failure: result.ok ? undefined : result.failure });
  return result;
}

async function operations(call: HealthCall, signal: AbortSignal) {
  const outcome = await runOperations(call, (c) => keys().open(c), signal);
  const fields = { requestId: call.requestId, instanceId: call.instanceId, type: call.type };
  if (outcome.ok) log('debug', 'connector operations listed', { ...fields, operations: outcome.operations.length });
  else log('info', 'connector operations could not be listed', { ...fields, failure: outcome.failure });
  return outcome;
}

process.on('message', (request: ExecutorRequest) => {
  handle(request).then(
    (value) => send({ id: request.id, ok: true, value: value ?? null }),
    (err: unknown) => {
      // Only the message: a stack or a library's details stay out of the answer and the log.
      const message = err instanceof Error ? err.message : 'the executor failed';
      log('error', `executor request ${request.kind} failed`, { error: message });
      send({ id: request.id, ok: false, message });
    },
  );
});
// The gateway went away (closed, crashed or killed): so does the executor. Its lifetime is the
// gateway's: a Ctrl-C reaching the whole process group stops the gateway, which then closes this.
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => {});
// A driver's stray promise must not end every other call in flight; its details may be a peer's words, so only its kind is logged.
process.on('unhandledRejection', (reason) => log('error', 'a connector driver failed outside a call', { error: reason instanceof Error ? reason.name : typeof reason }));
if (!process.send) {
  process.stderr.write('the connector executor runs only as a child of the CyNode server\n');
  process.exit(2);
}
