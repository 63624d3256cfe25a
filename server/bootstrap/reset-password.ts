import { randomBytes, randomUUID } from 'node:crypto';
import { MIN_PASSWORD_LENGTH } from '../identity/passwords';
import type { UserService } from '../users/service';

/**
 * The way back in when the only admin forgot their password: run at the machine, by whoever
 * can read the data directory (or the database), never over the network. The change is
 * attributed to the `system` user in the audit trail and ends the user's sessions.
 */
export async function resetPasswordOffline(users: UserService, handle: string, given: string | undefined): Promise<string> {
  const system = await users.findByHandle('system');
  const user = await users.findByHandle(handle);
  if (!system || !user) throw new OfflineResetError(`there is no user "${handle}"`);
  if (user.is_system) throw new OfflineResetError('the system user never signs in and has no password');
  if (given !== undefined && given.length < MIN_PASSWORD_LENGTH) throw new OfflineResetError(`the new password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  const password = given ?? randomBytes(15).toString('base64url');
  // A generated first-run password it replaces no longer opens anything: setPassword removes its copy on disk.
  await users.setPassword(
    { kind: 'reset', by: { userId: system.id, handle: 'system', via: 'local' }, ctx: { requestId: `cli-${randomUUID()}`, ip: 'local', userAgent: 'cynode reset-password' }, userId: user.id },
    password,
  );
  return password;
}

export class OfflineResetError extends Error {}
