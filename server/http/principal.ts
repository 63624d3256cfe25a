/** Who is calling: resolved once per request by the authenticator, used by every service. */
export interface Principal {
  userId: string;
  handle: string;
  /**
   * How the caller proved it: a signed-in session's access token, a personal API key, or
   * `local`: the operator at this machine running a `cynode` command (never over HTTP).
   */
  via: 'session' | 'api_key' | 'local';
  sessionId?: string;
  apiKeyId?: string;
}

/** What the audit trail records about the request behind an action. */
export interface RequestContext {
  requestId: string;
  ip: string;
  userAgent: string | undefined;
}
