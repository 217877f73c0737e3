import { ConflictError, POSTGRES, UnavailableError } from '../../errors.js';

const UNIQUE_VIOLATION = '23505';
const UNDEFINED_TABLE = '42P01';
const UNDEFINED_COLUMN = '42703';
/** Connection exceptions, too many connections, shutdowns, and a statement timeout. */
const UNAVAILABLE_CLASSES = ['08', '53', '57'];

function sqlState(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** Turns a pg error into the service's taxonomy, once, at the adapter's edge. */
export function toServiceError(error: unknown, what: string): Error {
  const code = sqlState(error);
  if (code === UNIQUE_VIOLATION)
    return new ConflictError(`${what}: already exists`, { cause: error });
  if (code === UNDEFINED_TABLE || code === UNDEFINED_COLUMN) {
    return new UnavailableError(POSTGRES, `${POSTGRES} schema is outdated: run npm run migrate`, {
      cause: error,
    });
  }
  // Not a SQLSTATE: the driver could not reach the server (refused, reset, timed out).
  const fromServer = /^[0-9A-Z]{5}$/.test(code);
  if (!fromServer || UNAVAILABLE_CLASSES.some((cls) => code.startsWith(cls))) {
    return new UnavailableError(POSTGRES, `${POSTGRES} unavailable (${what})`, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}
