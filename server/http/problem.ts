/**
 * RFC 9457 problem details. Services throw `HttpProblem`; the error handler renders it
 * (or, on the OpenAI-compatible routes, the OpenAI error shape).
 */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  [extension: string]: unknown;
}

const KINDS: Record<number, { type: string; title: string }> = {
  400: { type: 'urn:cynode:error:validation', title: 'Bad Request' },
  401: { type: 'urn:cynode:error:authentication', title: 'Unauthorized' },
  403: { type: 'urn:cynode:error:authorization', title: 'Forbidden' },
  404: { type: 'urn:cynode:error:not_found', title: 'Not Found' },
  405: { type: 'urn:cynode:error:method_not_allowed', title: 'Method Not Allowed' },
  406: { type: 'urn:cynode:error:not_acceptable', title: 'Not Acceptable' },
  408: { type: 'urn:cynode:error:request_timeout', title: 'Request Timeout' },
  409: { type: 'urn:cynode:error:conflict', title: 'Conflict' },
  413: { type: 'urn:cynode:error:payload_too_large', title: 'Payload Too Large' },
  414: { type: 'urn:cynode:error:uri_too_long', title: 'URI Too Long' },
  415: { type: 'urn:cynode:error:unsupported_media_type', title: 'Unsupported Media Type' },
  421: { type: 'urn:cynode:error:misdirected', title: 'Misdirected Request' },
  422: { type: 'urn:cynode:error:validation', title: 'Unprocessable Content' },
  429: { type: 'urn:cynode:error:rate_limit', title: 'Too Many Requests' },
  431: { type: 'urn:cynode:error:headers_too_large', title: 'Request Header Fields Too Large' },
  500: { type: 'urn:cynode:error:internal', title: 'Internal Server Error' },
  503: { type: 'urn:cynode:error:unavailable', title: 'Service Unavailable' },
};

export function problemKind(status: number): { type: string; title: string } {
  return KINDS[status] ?? { type: `urn:cynode:error:http_${status}`, title: `HTTP ${status}` };
}

export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly extensions: Record<string, unknown> = {},
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

export const badRequest = (detail: string, ext?: Record<string, unknown>) => new HttpProblem(400, detail, ext);
export const unauthorized = (detail = 'Authentication required') => new HttpProblem(401, detail);
export const forbidden = (detail = 'You are not allowed to do this') => new HttpProblem(403, detail);
export const notFound = (what = 'Resource') => new HttpProblem(404, `${what} not found`);
export const conflict = (detail: string) => new HttpProblem(409, detail);
export const tooManyRequests = (detail: string, retryAfterSeconds: number) =>
  new HttpProblem(429, detail, { retry_after: retryAfterSeconds }, { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) });

export function problemDocument(status: number, detail: string, requestId: string, ext: Record<string, unknown> = {}): ProblemDocument {
  const kind = problemKind(status);
  return { type: kind.type, title: kind.title, status, detail, instance: requestId, ...ext };
}
