import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../db';
import { MIN_PASSWORD_LENGTH } from '../auth/passwords';
import { findUserByHandle } from '../users/store';
import { resetPassword } from '../users/service';
import { removeFirstRunPasswordFile } from '../users/first-run-password';

/**
 * The way back in when the only admin forgot their password: run at the machine, by whoever
 * can read the data directory (or the database), never over the network. The change is
 * attributed to the `system` user in the audit trail and ends the user's sessions.
 */
export async function resetPasswordOffline(db: Db, handle: string, given: string | undefined, firstRunPasswordFile: string): Promise<string> {
  const system = await findUserByHandle(db, 'system');
  const user = await findUserByHandle(db, handle);
  if (!system || !user) throw new OfflineResetError(`there is no user "${handle}"`);
  if (user.is_system) throw new OfflineResetError('the system user never signs in and has no password');
  if (given !== undefined && given.length < MIN_PASSWORD_LENGTH) throw new OfflineResetError(`the new password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  const password = given ?? randomBytes(15).toString('base64url');
  const replacedFirstRun = await resetPassword(
    db,
    { by: { userId: system.id, handle: 'system', via: 'local' }, ctx: { requestId: `cli-${randomUUID()}`, ip: 'local', userAgent: 'cynode reset-password' } },
    user.id,
    password,
  );
  // The generated first-run password no longer opens anything: its copy on disk goes.
  if (replacedFirstRun) await removeFirstRunPasswordFile(firstRunPasswordFile);
  return password;
}

export class OfflineResetError extends Error {}
