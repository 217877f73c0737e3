/**
 * The one error taxonomy of the service. Adapters turn driver errors into these once; the HTTP
 * layer maps them to status codes in one place (lib/http/errorMapper.ts).
 */
export abstract class ServiceError extends Error {
  abstract readonly statusCode: number;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A kind of ServiceError with its status; each kind below is a class of its own, for `instanceof`. */
function withStatus(status: number) {
  return class extends ServiceError {
    readonly statusCode = status;
  };
}

/** No API key was sent. */
export class UnauthorizedError extends withStatus(401) {}

/** An API key was sent, and it is not one of ours. */
export class ForbiddenError extends withStatus(403) {}

export class NotFoundError extends withStatus(404) {}

export class ConflictError extends withStatus(409) {}

/** A body or a file over the size the service moves. */
export class PayloadTooLargeError extends withStatus(413) {}

/**
 * A path in a sandbox that is missing (404), forbidden to the user (403) or of the wrong kind
 * (409): the operation's own answer, never read as the container's state.
 */
export class PathError extends ServiceError {
  constructor(
    readonly statusCode: 403 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export class ValidationError extends ServiceError {
  readonly statusCode = 422;

  constructor(readonly issues: ValidationIssue[]) {
    super(issues.map((issue) => `${issue.loc.join('.')}: ${issue.msg}`).join('; '));
  }
}

/** The names the 503s and logs give the service's dependencies. */
export const DOCKER = 'Docker engine';
export const POSTGRES = 'Postgres';
export const S3 = 'S3';

/** A dependency (Docker engine, Postgres, S3) is down or refused; the message names it. */
export class UnavailableError extends ServiceError {
  readonly statusCode = 503;

  constructor(
    readonly dependency: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function sandboxNotFound(sandboxId: string): NotFoundError {
  return new NotFoundError(`Sandbox ${sandboxId} not found`);
}

export function processNotFound(processId: string): NotFoundError {
  return new NotFoundError(`Process ${processId} not found`);
}
