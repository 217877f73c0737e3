import { describe, expect, it } from '@jest/globals';
import { toServiceError } from '../../lib/adapters/docker/dockerErrors.js';
import { ConflictError, NotFoundError, UnavailableError } from '../../lib/errors.js';

/** A dockerode error as the modem builds it: the status code, and the engine's JSON message. */
function engineError(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) ${message}`), {
    statusCode,
    json: { message },
  });
}

describe('Docker errors, in the service taxonomy', () => {
  it('a missing container is a 404 and one in the wrong state a 409', () => {
    expect(toServiceError(engineError(404, 'No such container: x'), 'exec')).toBeInstanceOf(
      NotFoundError,
    );
    expect(toServiceError(engineError(409, 'is paused'), 'exec')).toBeInstanceOf(ConflictError);
  });

  it('an exec in a container that has just stopped is a 409, though the engine says 500', () => {
    const error = toServiceError(
      engineError(500, 'Container abc is not running: Exited (137) Less than a second ago'),
      'start the command channel',
    );
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toContain('is not running');
  });

  it('any other failure is the engine being unavailable, a 503 naming it', () => {
    const error = toServiceError(engineError(500, 'something broke'), 'create');
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error.message).toBe('Docker engine unavailable (create)');
    expect(toServiceError(new Error('connect ECONNREFUSED'), 'ping')).toBeInstanceOf(
      UnavailableError,
    );
  });
});
