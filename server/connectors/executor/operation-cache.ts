import { createHash } from 'node:crypto';
import type { HealthCall } from '../executor-api';
import type { OperationSpec } from '../types/contract';

/*
 * The operations discovered from an instance's peer (an MCP server's tools), kept in the executor
 * so that a call does not start the server once to learn its tools and again to run one. One
 * entry per instance, valid only for the configuration, credential version and egress allow list
 * it was discovered with (any change discovers again) and for a short time (a server may change
 * its tools). Bounded: the least recently used instance goes first. Failures are not kept.
 *
 * The entries hold tool names and schemas, never a credential: the fingerprint takes the
 * credential's id and version, not its ciphertext or plaintext.
 */

export interface OperationCacheOptions {
  /** Instances kept at most. */
  max: number;
  /** How long a discovery stays valid. */
  ttlMs: number;
  now?: () => number;
}

interface Entry {
  fingerprint: string;
  at: number;
  operations: Promise<OperationSpec[]>;
}

export const DEFAULT_OPERATION_CACHE: OperationCacheOptions = { max: 256, ttlMs: 60_000 };

/** What an entry is valid for: everything of the call that can change what the peer offers. */
export function fingerprintOf(call: HealthCall): string {
  const credential = call.credential ? [call.credential.credentialId, call.credential.version] : null;
  return createHash('sha256')
    .update(JSON.stringify([call.type, call.config, credential, [...call.egressAllow].sort()]))
    .digest('base64url');
}

export class OperationCache {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly options: OperationCacheOptions = DEFAULT_OPERATION_CACHE) {
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The instance's operations: the kept ones while they are valid for this call, else those
   * `discover` answers (one discovery at a time per instance and fingerprint; concurrent callers share it).
   */
  get(call: HealthCall, discover: () => Promise<OperationSpec[]>): Promise<OperationSpec[]> {
    const fingerprint = fingerprintOf(call);
    const kept = this.entries.get(call.instanceId);
    if (kept && kept.fingerprint === fingerprint && this.now() - kept.at < this.options.ttlMs) {
      // Most recently used last: eviction takes from the front.
      this.entries.delete(call.instanceId);
      this.entries.set(call.instanceId, kept);
      return kept.operations;
    }
    const entry: Entry = { fingerprint, at: this.now(), operations: discover() };
    this.entries.delete(call.instanceId);
    this.entries.set(call.instanceId, entry);
    while (this.entries.size > this.options.max) this.entries.delete(this.entries.keys().next().value!);
    entry.operations.catch(() => {
      if (this.entries.get(call.instanceId) === entry) this.entries.delete(call.instanceId);
    });
    return entry.operations;
  }
}
