import type { Sandbox } from '../domain/sandbox.js';
import type { Logger } from '../logger.js';

type Extra = Record<string, unknown>;

/** Log calls that carry the sandbox's ids; cheaper than a child logger per call. */
export function sandboxLog(logger: Logger, sandbox: Pick<Sandbox, 'sandboxId' | 'userId'>) {
  const ids = { sandbox_id: sandbox.sandboxId, user_id: sandbox.userId };
  return {
    debug: (message: string, extra: Extra = {}) => logger.debug(message, { ...ids, ...extra }),
    info: (message: string, extra: Extra = {}) => logger.info(message, { ...ids, ...extra }),
    warn: (message: string, extra: Extra = {}) => logger.warn(message, { ...ids, ...extra }),
    error: (message: string, extra: Extra = {}) => logger.error(message, { ...ids, ...extra }),
  };
}
