import { EXEC_STATUSES, type Sandbox } from '../domain/sandbox.js';
import { ConflictError, NotFoundError, sandboxNotFound } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SandboxStore } from '../ports.js';
import { moveStatus } from './statusMoves.js';

/** A sandbox that takes commands: ready or running, on this host, with its container. */
export type CommandableSandbox = Sandbox & { containerId: string };

/**
 * How a request reaches a sandbox, the same way for every service: found (404 first), run by this
 * host (another host's is read here, never acted on), and able to take commands (409 otherwise).
 */
export class SandboxAccess {
  constructor(
    private readonly store: SandboxStore,
    private readonly hostId: string,
    private readonly logger: Logger,
  ) {}

  async get(sandboxId: string): Promise<Sandbox> {
    const sandbox = await this.store.get(sandboxId);
    if (!sandbox) throw sandboxNotFound(sandboxId);
    return sandbox;
  }

  async getLocal(sandboxId: string): Promise<Sandbox> {
    const sandbox = await this.get(sandboxId);
    if (sandbox.hostId !== this.hostId) {
      throw new ConflictError(
        `Sandbox ${sandboxId} runs on host ${sandbox.hostId}; send this request to that host`,
      );
    }
    return sandbox;
  }

  async getCommandable(sandboxId: string): Promise<CommandableSandbox> {
    const sandbox = await this.getLocal(sandboxId);
    const { containerId } = sandbox;
    if (!EXEC_STATUSES.includes(sandbox.status) || !containerId) {
      throw new ConflictError(`Sandbox ${sandboxId} is not running (status: ${sandbox.status})`);
    }
    return { ...sandbox, containerId };
  }

  /** A command or process starts: a ready sandbox is running from now on. */
  async markRunning(sandbox: Sandbox): Promise<void> {
    if (sandbox.status !== 'ready') return;
    await moveStatus(
      this.store,
      this.logger,
      sandbox.sandboxId,
      { status: 'running' },
      'first command',
    );
  }

  /** Records activity up to `until`; only a sandbox that can go idle pays for keeping it. */
  async touchActivity(sandbox: Sandbox, until: Date): Promise<void> {
    if (sandbox.idleTimeoutSeconds > 0) await this.store.touchActivity(sandbox.sandboxId, until);
  }
}

/**
 * Runs a runtime call on the sandbox's container. The runtime's NotFoundError or ConflictError
 * there means the container is gone or stopped: the sandbox's 409. `ownConflicts`: the call's
 * ConflictError has a meaning of its own (a process that has ended) and goes up as it is.
 */
export async function inContainer<T>(
  sandboxId: string,
  call: () => Promise<T>,
  options: { ownConflicts?: boolean } = {},
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const gone =
      error instanceof NotFoundError || (!options.ownConflicts && error instanceof ConflictError);
    if (gone) {
      throw new ConflictError(`Sandbox ${sandboxId} is not running (its container is not)`, {
        cause: error,
      });
    }
    throw error;
  }
}
