import type { ValidationIssue } from './types.js';

/** Anything the client throws on its own account; an AbortSignal's abort stays an AbortError. */
export class MatrxError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Where a call went, for messages: `GET /sandboxes/sbx-0123456789ab`. */
export interface CallSite {
  method: string;
  path: string;
}

/** The API answered with an error status: `status` and its `detail`, as the API wrote them. */
export class ApiError extends MatrxError {
  readonly method: string;
  readonly path: string;

  constructor(
    readonly status: number,
    /** The API's message; a 422's issues joined (the list is on ValidationError). */
    readonly detail: string,
    site: CallSite,
  ) {
    super(`${status} ${detail}`);
    this.method = site.method;
    this.path = site.path;
  }
}

/** 401 (no key) or 403 (a wrong key). */
export class AuthError extends ApiError {}

/** 404: no such sandbox, process or route (or file). */
export class NotFoundError extends ApiError {}

/** 409: the sandbox or process is not in a state that allows the call. */
export class ConflictError extends ApiError {}

/** 422: the request broke the route's schema; `issues` is the API's `detail` list. */
export class ValidationError extends ApiError {
  constructor(
    readonly issues: ValidationIssue[],
    site: CallSite,
  ) {
    super(422, issues.map((issue) => `${issue.loc.join('.')}: ${issue.msg}`).join('; '), site);
  }
}

/** 503: the service is shutting down, or a dependency it names (Docker, Postgres, S3) is down. */
export class UnavailableError extends ApiError {}

/** The server could not be reached, or the connection broke before an answer. */
export class ConnectionError extends MatrxError {}

/** The call took longer than its `timeoutMs` (retries included). */
export class TimeoutError extends MatrxError {}

const BY_STATUS: Record<number, typeof ApiError> = {
  401: AuthError,
  403: AuthError,
  404: NotFoundError,
  409: ConflictError,
  503: UnavailableError,
};

/** The error for an API's error answer, from its status and `{"detail": ...}` body. */
export function apiError(status: number, body: unknown, site: CallSite): ApiError {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (status === 422 && Array.isArray(detail)) {
    return new ValidationError(detail as ValidationIssue[], site);
  }
  const message = typeof detail === 'string' ? detail : describeBody(body);
  const Kind = BY_STATUS[status] ?? ApiError;
  return new Kind(status, message, site);
}

function describeBody(body: unknown): string {
  if (body === null || body === undefined || body === '') return 'no detail in the answer';
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
