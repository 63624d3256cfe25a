import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { forbidden } from '../http/problem';

/**
 * Credentials are managed only by someone who signed in with their password. An API key that
 * could create keys would outlive its own revocation through them, and one that could change the
 * password could also try passwords against it; a refusal is audited like any other denial.
 * `what` completes "An API key cannot …".
 */
export async function requireSignedIn(db: Db, principal: Principal, action: string, what: string, ctx: RequestContext): Promise<void> {
  // Fail closed: any credential but a password's session (or the operator at the machine) is refused.
  if (principal.via === 'session' || principal.via === 'local') return;
  await appendAudit(
    db,
    {
      category: 'access',
      action,
      outcome: 'deny',
      actorId: principal.userId,
      actorHandle: principal.handle,
      resourceType: principal.via === 'agent' ? 'agent_token' : 'api_key',
      resourceId: principal.via === 'agent' ? principal.agent?.id : principal.apiKeyId,
      scopeType: 'system',
      reason: 'credentials are managed with a signed-in session, not an API key',
    },
    ctx,
  );
  throw forbidden(`${principal.via === 'agent' ? 'An agent' : 'An API key'} cannot ${what}: sign in with your password to do this`);
}
