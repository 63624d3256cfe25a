import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import { sameSecret } from '../http/credentials';
import type { Principal, RequestContext } from '../http/principal';
import { conflict } from '../http/problem';
import { shellQuote } from '../lib/shell';
import type { Vault } from '../vault/envelope';
import { insertSealedPskIfAbsent, readSealedPsk, replaceSealedPsk } from './store';

/** The vault context the join key is sealed for. */
export const PSK_CONTEXT = 'system:node-psk';

/**
 * The pre-shared key a node presents to register (spec/node.md §1.4, D-2).
 *
 * `CYNODE_NODE_PSK`, when set, is the key and nothing is stored (it cannot be rotated through the
 * API: the environment would bring the old one back at the next start). Otherwise a random key is
 * generated on first start and kept sealed in `system_settings`; it is read from the database on
 * every check, so a rotation through one gateway holds for every gateway on the same database.
 */
export class JoinPsk {
  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
    private readonly fixed: string | undefined,
  ) {}

  /** Whether the key comes from the environment (and cannot be rotated). */
  get isFixed(): boolean {
    return this.fixed !== undefined;
  }

  /** Creates the stored key on first start; a no-op when the environment fixes it. */
  async ensure(): Promise<void> {
    if (this.fixed === undefined) await this.current();
  }

  async current(): Promise<string> {
    if (this.fixed !== undefined) return this.fixed;
    const sealed = await readSealedPsk(this.db);
    if (sealed) return this.vault.open(sealed, PSK_CONTEXT);
    // Two processes starting at once on one database: whichever inserts first wins, both read it.
    await insertSealedPskIfAbsent(this.db, this.vault.seal(newPsk(), PSK_CONTEXT));
    return this.vault.open((await readSealedPsk(this.db))!, PSK_CONTEXT);
  }

  /** Whether `candidate` is the key, in time that does not depend on where they differ. */
  async matches(candidate: string): Promise<boolean> {
    return sameSecret(candidate, await this.current());
  }

  /** Reading the key reveals a secret, so it is audited like a change. */
  async reveal(by: Principal, ctx: RequestContext): Promise<string> {
    const psk = await this.current();
    await appendAudit(this.db, { ...auditBase(by), action: 'node_psk_read', details: { source: this.isFixed ? 'environment' : 'generated' } }, ctx);
    return psk;
  }

  /** A new generated key; the old one stops admitting nodes at once (registered nodes keep their tokens). */
  async rotate(by: Principal, ctx: RequestContext): Promise<string> {
    if (this.isFixed) throw conflict('The join key is set by CYNODE_NODE_PSK; change that variable and restart to rotate it');
    const psk = newPsk();
    await this.db.transaction(async (tx) => {
      await replaceSealedPsk(tx, this.vault.seal(psk, PSK_CONTEXT), by.userId);
      await appendAudit(tx, { ...auditBase(by), action: 'node_psk_rotated' }, ctx);
    });
    return psk;
  }
}

const newPsk = () => randomBytes(32).toString('base64url');

const auditBase = (by: Principal) =>
  ({ category: 'admin', outcome: 'success', actorId: by.userId, actorHandle: by.handle, resourceType: 'system_setting', resourceId: 'node_join_psk', scopeType: 'system' }) as const;

/**
 * The control plane's URL as another machine must type it. Bound to every interface (0.0.0.0,
 * ::), the listener has no single address of its own: the first non-internal IPv4 address of
 * this machine is the best guess, loopback when there is none.
 */
export function advertisedUrl(host: string, port: number): string {
  let shown = host;
  if (host === '0.0.0.0' || host === '::' || host === '') {
    const addresses = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined);
    shown = addresses.find((a) => a.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1';
  }
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
}

/** The command a remote box runs to join, quoted for a POSIX shell. */
export function joinCommand(controlPlaneUrl: string, psk: string): string {
  return `cynode node --join ${shellQuote(controlPlaneUrl)} --psk ${shellQuote(psk)}`;
}
