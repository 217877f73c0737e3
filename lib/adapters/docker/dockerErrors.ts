import { ConflictError, DOCKER, NotFoundError, UnavailableError } from '../../errors.js';

interface DockerApiError {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
  message?: string;
}

function asDockerError(error: unknown): DockerApiError {
  return typeof error === 'object' && error !== null ? (error as DockerApiError) : {};
}

export function dockerStatus(error: unknown): number | undefined {
  return asDockerError(error).statusCode;
}

export function dockerMessage(error: unknown): string {
  const { json, message } = asDockerError(error);
  return (json?.message ?? message ?? String(error)).trim();
}

/** Turns a dockerode error into the service's taxonomy, once, at the adapter's edge. */
export function toServiceError(error: unknown, what: string): Error {
  const status = dockerStatus(error);
  const message = dockerMessage(error);
  if (status === 404) return new NotFoundError(`${what}: ${message}`, { cause: error });
  if (status === 409) return new ConflictError(`${what}: ${message}`, { cause: error });
  // An exec in a container that has just stopped: the engine says so with a 500.
  if (status === 500 && /is not running/i.test(message)) {
    return new ConflictError(`${what}: ${message}`, { cause: error });
  }
  return new UnavailableError(DOCKER, `${DOCKER} unavailable (${what})`, { cause: error });
}

/** Runs a Docker call where some statuses mean the goal is already met (304 started, 404 gone). */
export async function treatingAsDone(
  statuses: number[],
  what: string,
  call: () => Promise<unknown>,
): Promise<void> {
  try {
    await call();
  } catch (error) {
    const status = dockerStatus(error);
    if (status !== undefined && statuses.includes(status)) return;
    throw toServiceError(error, what);
  }
}

/** Whether the engine's output says the image has no such user (an exec as that user). */
export function saysNoSuchUser(output: string, user: string): boolean {
  return output.includes(`unable to find user ${user}`);
}
