// The Content-Security-Policy the desktop window enforces on everything it loads, added to each
// response from the console's origin (on top of the gateway's own header: browsers enforce both).

/** Directive → sources. Scripts only from the console's origin: no inline script, no eval. */
export const CSP_DIRECTIVES: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['default-src', ["'self'"]],
  ['script-src', ["'self'"]],
  // No inline styles either: React sets styles through the DOM, which CSP allows (as the
  // gateway's console policy).
  ['style-src', ["'self'"]],
  ['img-src', ["'self'", 'data:', 'blob:']],
  ['font-src', ["'self'", 'data:']],
  ['connect-src', ["'self'"]],
  ['media-src', ["'self'", 'blob:']],
  ['worker-src', ["'self'", 'blob:']],
  ['manifest-src', ["'self'"]],
  ['object-src', ["'none'"]],
  ['frame-src', ["'none'"]],
  ['child-src', ["'none'"]],
  ['frame-ancestors', ["'none'"]],
  ['base-uri', ["'none'"]],
  ['form-action', ["'self'"]],
];

export function buildCsp(directives: ReadonlyArray<readonly [string, readonly string[]]> = CSP_DIRECTIVES): string {
  return directives.map(([name, sources]) => `${name} ${sources.join(' ')}`).join('; ');
}

export type ResponseHeaders = Record<string, string | string[]>;

/**
 * The response headers with the desktop CSP added (for `session.webRequest.onHeadersReceived`).
 * A header the gateway sent stays: a second policy can only narrow what the first allows.
 */
export function withCsp(headers: ResponseHeaders | undefined, csp: string = buildCsp()): ResponseHeaders {
  const out: ResponseHeaders = { ...(headers ?? {}) };
  const key = Object.keys(out).find((k) => k.toLowerCase() === 'content-security-policy');
  if (key === undefined) {
    out['Content-Security-Policy'] = [csp];
  } else {
    const existing = out[key]!;
    const list = Array.isArray(existing) ? existing : [existing];
    if (!list.includes(csp)) out[key] = [...list, csp];
  }
  return out;
}
