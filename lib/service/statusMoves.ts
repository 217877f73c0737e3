import type { Sandbox } from '../domain/sandbox.js';
import { sandboxNotFound } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SandboxStore, StatusChange } from '../ports.js';
import { sandboxLog } from './sandboxLog.js';

/**
 * Every status change goes through here: the store checks it against the lifecycle table, and it
 * is logged with its reason. A move the table forbids is the store's ConflictError.
 */
export async function moveStatus(
  store: SandboxStore,
  logger: Logger,
  sandboxId: string,
  change: StatusChange,
  reason: string,
): Promise<Sandbox> {
  const update = await store.updateStatus(sandboxId, change);
  if (!update) throw sandboxNotFound(sandboxId);
  const { sandbox, previous } = update;
  if (previous !== sandbox.status) {
    sandboxLog(logger, sandbox).info('sandbox status changed', {
      from: previous,
      to: sandbox.status,
      reason,
    });
  }
  return sandbox;
}
