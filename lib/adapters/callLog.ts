import { NotFoundError, UnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';

export interface CallTarget {
  /** What was asked of the dependency: `create`, `stop`, `put_object`... */
  operation: string;
  /** What it was asked of: a container, a bucket and key. */
  target: Record<string, string | undefined>;
  /** Above this a success is logged as slow; omit for calls whose length the caller decides. */
  slowMs?: number;
}

/**
 * Runs one call to Docker or S3 and logs it once: routine successes and "not found" at DEBUG, slow
 * ones at WARNING, failures at WARNING (the caller's mistake) or ERROR (the dependency is down).
 */
export async function loggedCall<T>(
  logger: Logger,
  dependency: string,
  call: CallTarget,
  run: () => Promise<T>,
  bytesOf?: (result: T) => number | undefined,
): Promise<T> {
  const started = performance.now();
  const fields = () => ({
    dependency,
    operation: call.operation,
    ...call.target,
    duration_ms: Math.round((performance.now() - started) * 10) / 10,
  });
  try {
    const result = await run();
    const done = { ...fields(), outcome: 'ok', bytes: bytesOf?.(result) };
    if (call.slowMs !== undefined && done.duration_ms > call.slowMs) {
      logger.warn(`slow ${dependency} call`, done);
    } else {
      logger.debug(`${dependency} call`, done);
    }
    return result;
  } catch (error) {
    if (error instanceof NotFoundError) {
      // Often the answer the caller hoped for (already gone, nothing saved yet); it decides.
      logger.debug(`${dependency} call found nothing`, {
        ...fields(),
        outcome: 'not_found',
        reason: error.message,
      });
      throw error;
    }
    const failed = { ...fields(), outcome: 'error', error };
    if (error instanceof UnavailableError) logger.error(`${dependency} call failed`, failed);
    else logger.warn(`${dependency} call failed`, failed);
    throw error;
  }
}
