/** Who is calling: resolved once per request by the authenticator, used by every service. */
export interface Principal {
  userId: string;
  handle: string;
  /**
   * How the caller proved it: a signed-in session's access token, a personal API key, or
   * `local`: the operator at this machine running a `cynode` command (never over HTTP), or
   * `agent`: an agent acting for the user with an agent token (only at /mcp, server/agents/).
   */
  via: 'session' | 'api_key' | 'local' | 'agent';
  sessionId?: string;
  apiKeyId?: string;
  /** For `agent`: its token's id (the Agent entity's), its role, and what the token binds it to. */
  agent?: { id: string; role: string; taskId?: string; sessionId?: string; projectId?: string };
}

/** What the audit trail records about the request behind an action. */
export interface RequestContext {
  requestId: string;
  ip: string;
  userAgent: string | undefined;
}
