import { randomBytes } from 'node:crypto';
import { chmod, rm, writeFile } from 'node:fs/promises';
import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import { bindRole } from '../rbac/bindings';
import { markFirstRunPasswordPending } from '../users/first-run-password';
import type { UserService } from '../users/service';

export interface FirstRunResult {
  adminCreated: boolean;
  /** Only when the password was generated: shown once, and written to a 0600 file. */
  generatedPassword?: string;
}

const BOOTSTRAP_LOCK = 727_002;

/**
 * Creates what a new installation needs, once: the reserved `system` user and the `admin` user
 * (password from CYNODE_ADMIN_PASSWORD or generated), each with a default project. Every later
 * start finds them and changes nothing. Safe when several gateways start together.
 */
export async function firstRun(db: Db, users: UserService, opts: { adminPassword: string | undefined; passwordFile: string }): Promise<FirstRunResult> {
  const generated = opts.adminPassword ? undefined : randomBytes(15).toString('base64url');
  const password = opts.adminPassword ?? generated!;

  let wroteFile = false;
  const created = await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [BOOTSTRAP_LOCK]);
    let system = await users.findByHandle('system', tx);
    if (!system) {
      system = await users.createWithDefaultProject(tx, { handle: 'system', displayName: 'System', isSystem: true }, null);
      await appendAudit(tx, { category: 'admin', action: 'user_created', outcome: 'success', actorId: system.id, actorHandle: 'system', resourceType: 'user', resourceId: system.id, reason: 'first run' });
    }
    if (await users.findByHandle('admin', tx)) return false;
    const admin = await users.createWithDefaultProject(tx, { handle: 'admin', displayName: 'Administrator' }, system.id);
    await users.setPassword({ kind: 'initial', tx, userId: admin.id }, password);
    await bindRole(tx, { subjectType: 'user', subjectId: admin.id, role: 'admin', scopeType: 'system', scopeId: null, by: system.id });
    await appendAudit(tx, { category: 'admin', action: 'user_created', outcome: 'success', actorId: system.id, actorHandle: 'system', resourceType: 'user', resourceId: admin.id, reason: 'first run', details: { handle: 'admin', roles: ['admin'] } });
    // Written before the commit, under the lock: a crash after the commit cannot lose the only
    // copy of the password, and a crash before it leaves a stale file the next first run replaces.
    if (generated) {
      // Until the admin chooses a password (GET /v1/setup says so; the console offers it at the machine).
      await markFirstRunPasswordPending(tx, admin.id);
      await writeFile(opts.passwordFile, generated + '\n', { mode: 0o600 });
      await chmod(opts.passwordFile, 0o600); // a stale file keeps its old mode otherwise
      wroteFile = true;
    }
    return true;
  }).catch(async (err: unknown) => {
    if (wroteFile) await rm(opts.passwordFile, { force: true });
    throw err;
  });

  return created && generated ? { adminCreated: true, generatedPassword: generated } : { adminCreated: created };
}
