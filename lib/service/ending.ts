import { TERMINAL_STATUSES, type Sandbox, type SandboxStatus } from '../domain/sandbox.js';
import { NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ContainerRuntime, SandboxStore } from '../ports.js';
import type { ColdTier } from './coldTier.js';
import type { HomeSync } from './homeSync.js';
import type { InFlight } from './inFlight.js';
import { sandboxLog } from './sandboxLog.js';
import { moveStatus } from './statusMoves.js';

export interface EndOptions {
  graceful: boolean;
  reason: string;
  /** `stopped` unless the session ran out of time, or the sandbox broke a limit (`failed`). */
  finalStatus?: Extract<SandboxStatus, 'stopped' | 'expired' | 'failed'>;
  /** Kept on the row when the end was not asked for (the reconciler's findings). */
  lastError?: string;
  /** False: the home is not saved (it is over the disk limit); true when not said. */
  saveHome?: boolean;
}

/** Graceful stops get the sandbox's own shutdown window plus this margin before Docker kills. */
const STOP_MARGIN_SECONDS = 10;

/**
 * Ending a sandbox, the one way, for requests and the reconciler alike: `shutting_down`, stop,
 * save its home, remove its container, then `stopped` (or `expired`). Each status is written once;
 * each step is idempotent, so an end that was interrupted simply runs again, and a home is never
 * dropped unsaved (a failed save leaves the stopped container and `last_error`).
 */
export class SandboxEnding {
  /** One end at a time per sandbox; a second request joins the first. */
  readonly #ending = new Map<string, Promise<void>>();

  constructor(
    private readonly store: SandboxStore,
    private readonly runtime: ContainerRuntime,
    /** Users' homes in S3; null when no bucket is configured (nothing is kept). */
    private readonly homes: HomeSync | null,
    private readonly inFlight: InFlight,
    private readonly settings: { shutdownTimeoutSeconds: number },
    private readonly logger: Logger,
    private readonly cold: ColdTier | null = null,
  ) {}

  /** Ends the sandbox; resolves once its container is gone. Waits for a create in flight. */
  end(sandboxId: string, options: EndOptions): Promise<void> {
    const joined = this.#ending.get(sandboxId);
    if (joined) return joined;
    const ending = this.inFlight
      .run(sandboxId, () => this.#end(sandboxId, options))
      .finally(() => this.#ending.delete(sandboxId));
    this.#ending.set(sandboxId, ending);
    return ending;
  }

  /** Marks the sandbox `shutting_down` and answers; the rest of the end goes on behind. */
  async begin(sandbox: Sandbox, reason: string): Promise<Sandbox> {
    if (TERMINAL_STATUSES.includes(sandbox.status)) return sandbox;
    const shuttingDown =
      sandbox.status === 'shutting_down'
        ? sandbox
        : await moveStatus(
            this.store,
            this.logger,
            sandbox.sandboxId,
            { status: 'shutting_down' },
            reason,
          );
    this.end(sandbox.sandboxId, { graceful: true, reason }).catch((error: unknown) =>
      sandboxLog(this.logger, sandbox).error('background shutdown failed', { error }),
    );
    return shuttingDown;
  }

  async #end(sandboxId: string, options: EndOptions): Promise<void> {
    // Read afresh: another request, or another process, may have ended it meanwhile.
    const sandbox = await this.store.get(sandboxId);
    if (!sandbox || TERMINAL_STATUSES.includes(sandbox.status)) return;
    const { graceful, reason, lastError } = options;
    const log = sandboxLog(this.logger, sandbox);
    if (sandbox.status !== 'shutting_down') {
      const change = { status: 'shutting_down' as const, lastError };
      await moveStatus(this.store, this.logger, sandboxId, change, reason);
    }
    log.info('sandbox shutting down', { reason, graceful });
    // A create interrupted before the id was recorded left a container named after the sandbox.
    const container = sandbox.containerId ?? sandbox.sandboxId;
    try {
      const timeout = graceful ? this.settings.shutdownTimeoutSeconds + STOP_MARGIN_SECONDS : 0;
      await this.runtime.stop(container, timeout);
      // Stopped: every file it had open is closed, so its cold-tier writes are in S3.
      await this.cold?.release(sandbox, container);
      if (options.saveHome !== false) await this.#saveHome(sandbox, container);
      await this.runtime.remove(container);
    } catch (error) {
      await this.store.recordError(sandboxId, (error as Error).message);
      throw error;
    }
    const finalStatus = options.finalStatus ?? 'stopped';
    await moveStatus(this.store, this.logger, sandboxId, { status: finalStatus }, reason);
    log.info('sandbox destroyed', { reason });
  }

  /** Saves the stopped container's home; the container stays until this succeeds. */
  async #saveHome(sandbox: Sandbox, container: string): Promise<void> {
    if (!this.homes) return;
    try {
      await this.homes.save(sandbox.userId, container);
    } catch (error) {
      // The container was removed behind our back: its files went with it, nothing is left to save.
      if (!(error instanceof NotFoundError)) throw error;
      sandboxLog(this.logger, sandbox).error('container gone before its home could be saved', {
        error,
      });
    }
  }
}
