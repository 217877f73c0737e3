import { basename } from 'node:path';
import type { ColdTierState, Sandbox } from '../domain/sandbox.js';
import type { Logger } from '../logger.js';
import type { ColdMounts, ColdSweep, ContainerRuntime } from '../ports.js';
import { sandboxLog } from './sandboxLog.js';

export interface ColdTierHealth {
  available: boolean;
  /** Why /data/cold is a plain directory of each container on this host. */
  reason?: string;
  /** Users whose prefix is mounted on this host now. */
  mountedUsers: number;
}

/**
 * /data/cold backed by the user's `users/<id>/cold/` prefix: a slot bound into each container at
 * its creation, the user's prefix put there before the sandbox is ready, taken out once its
 * container has stopped (every file closed, so every write is in S3), and the sweep for what a
 * crash left. Where the host cannot mount, sandboxes run as before and say so (`unavailable`).
 */
export class ColdTier {
  constructor(
    /** Null when the cold tier is turned off, or no bucket is configured. */
    private readonly mounts: ColdMounts | null,
    /** Why it is null. */
    private readonly offReason: string,
    private readonly runtime: ContainerRuntime,
    private readonly logger: Logger,
  ) {}

  async unavailableReason(): Promise<string | null> {
    if (!this.mounts) return this.offReason;
    return this.mounts.unavailableReason();
  }

  /** The host directory a new container (named `name`) binds at /data/cold; none when off. */
  async slotFor(name: string): Promise<string | undefined> {
    if (!this.mounts || (await this.unavailableReason())) return undefined;
    return this.mounts.slotPath(name);
  }

  /**
   * Puts the user's prefix into the container's slot. A failure leaves /data/cold an empty
   * directory the agent cannot write to (root's), never one whose files would be lost silently.
   */
  async attach(sandbox: Sandbox, slotName: string): Promise<ColdTierState> {
    if (!this.mounts || (await this.unavailableReason())) return 'unavailable';
    try {
      await this.mounts.attach(sandbox.userId, slotName);
      return 'mounted';
    } catch (error) {
      sandboxLog(this.logger, sandbox).error('cold tier not mounted', { error });
      return 'unavailable';
    }
  }

  /** After the container stopped: its slot emptied, and the user's bind with their last slot. */
  release(sandbox: Sandbox, containerId: string): Promise<void> {
    return this.#detach(sandbox, async () => {
      const slot = await this.runtime.coldSlotOf(containerId);
      return slot && basename(slot);
    });
  }

  /** A slot filled for a container that is gone (a pool container lost before its claim). */
  releaseSlot(sandbox: Sandbox, slotName: string): Promise<void> {
    return this.#detach(sandbox, () => Promise.resolve(slotName));
  }

  async #detach(sandbox: Sandbox, slotOf: () => Promise<string | null>): Promise<void> {
    if (!this.mounts || (await this.unavailableReason())) return;
    try {
      const slot = await slotOf();
      if (slot) await this.mounts.detach(slot);
    } catch (error) {
      // Every write is in S3 already (the container stopped, or never ran the user's code); the
      // sweep takes the mount away.
      sandboxLog(this.logger, sandbox).warn('cold tier not released: the sweep will', { error });
    }
  }

  /** After files went from S3 behind the mounts' back: they show as gone at once. */
  async refresh(): Promise<void> {
    if (!this.mounts || (await this.unavailableReason())) return;
    await this.mounts.refresh();
  }

  async sweep(): Promise<ColdSweep | null> {
    if (!this.mounts || (await this.unavailableReason())) return null;
    const swept = await this.mounts.sweep(() => this.runtime.coldSlotsInUse());
    if (swept.slots + swept.users + swept.repaired > 0) {
      this.logger.info('cold tier swept', { ...swept });
    }
    return swept;
  }

  async health(): Promise<ColdTierHealth> {
    const reason = await this.unavailableReason();
    if (reason || !this.mounts) return { available: false, reason: reason ?? '', mountedUsers: 0 };
    return { available: true, mountedUsers: await this.mounts.mountedUsers() };
  }

  async close(): Promise<void> {
    await this.mounts?.close();
  }
}
