import type { Db } from '../db';
import type { RequestContext } from '../http/principal';
import { firstRunPasswordUser } from '../users/first-run-password';
import type { UserService } from '../users/service';

/**
 * First-run setup: whether the generated admin password is still in use, and choosing the
 * admin's password at the machine instead of reading the generated one.
 */
export class SetupService {
  constructor(
    private readonly db: Db,
    private readonly users: UserService,
  ) {}

  async firstRunPasswordPending(): Promise<boolean> {
    return (await firstRunPasswordUser(this.db)) !== null;
  }

  /** 409 once anyone chose a password; ends the sessions signed in with the generated one. */
  chooseAdminPassword(password: string, ctx: RequestContext): Promise<void> {
    return this.users.setPassword({ kind: 'first_run', ctx }, password);
  }
}
