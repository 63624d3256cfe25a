import type { Db } from '../db';
import type { Principal } from '../http/principal';
import { notFound } from '../http/problem';
import { findOwnSession } from './queries';
import { insertSession, listOwnSessions, type SessionRow } from './store';

/**
 * Sessions group a user's runs and transcripts; they nest through parent_session_id.
 * A session belongs to the user who created it and is visible to nobody else: someone else's
 * session answers 404, like one that does not exist.
 */
export class SessionService {
  constructor(private readonly db: Db) {}

  async create(principal: Principal, input: { title?: string; parent_session_id?: string }): Promise<SessionRow> {
    const parent = input.parent_session_id === undefined ? null : await this.get(principal, input.parent_session_id, 'Parent session');
    return insertSession(this.db, { userId: principal.userId, parentSessionId: parent?.id ?? null, projectId: parent?.project_id ?? null, title: input.title ?? null });
  }

  async get(principal: Principal, id: string, what = 'Session'): Promise<SessionRow> {
    const s = await findOwnSession(this.db, principal.userId, id);
    if (!s) throw notFound(what);
    return s;
  }

  async list(principal: Principal, f: { parentSessionId?: string; afterId?: string; limit: number }): Promise<{ sessions: SessionRow[]; more: boolean }> {
    if (f.parentSessionId) await this.get(principal, f.parentSessionId, 'Parent session');
    return listOwnSessions(this.db, { userId: principal.userId, ...f });
  }
}
