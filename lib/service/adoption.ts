import { newSandbox, type Sandbox } from '../domain/sandbox.js';
import { DEFAULT_TEMPLATE } from '../domain/sandboxConfig.js';
import type { Logger } from '../logger.js';
import type { ContainerRuntime, ObservedContainer, SandboxStore } from '../ports.js';
import { sandboxLog } from './sandboxLog.js';

export type OrphanAction = 'adopted' | 'unknown_container' | 'claim_interrupted';

/**
 * What happens to a sandbox container of this host that has no registry row. With the memory
 * registry the registry dies with the process, so such a container is one this host made before a
 * restart: it is adopted (`running`, with its labels' user, creation time, template and TTL; an
 * extend made before the restart is not on the labels, so it is lost). With Postgres it is
 * a stranger: it is left alone, with a warning.
 */
export class Adoption {
  constructor(
    private readonly store: SandboxStore,
    private readonly runtime: ContainerRuntime,
    private readonly settings: { hostId: string; adoptOrphans: boolean; defaultTtlSeconds: number },
    private readonly logger: Logger,
  ) {}

  isOurs(container: ObservedContainer): boolean {
    return container.hostId === null || container.hostId === this.settings.hostId;
  }

  /** Acts on the container if it is this host's and has no row; null when it has one (or is not ours). */
  async consider(container: ObservedContainer): Promise<OrphanAction | null> {
    if (!this.isOurs(container) || (await this.store.get(container.sandboxId))) return null;
    if (container.fromPool && !container.userId && this.settings.adoptOrphans) {
      // Renamed for a sandbox whose claim ended before its identity was written: no create
      // answered with it, so no user ever ran a command in it.
      await this.runtime.remove(container.containerId);
      this.logger.warn('pool container whose claim was interrupted: removed', {
        sandbox_id: container.sandboxId,
        container_id: container.containerId,
      });
      return 'claim_interrupted';
    }
    if (this.settings.adoptOrphans) {
      await this.#adopt(container);
      return 'adopted';
    }
    this.logger.warn('sandbox container has no registry row: left alone', {
      sandbox_id: container.sandboxId,
      user_id: container.userId,
      container_id: container.containerId,
      container_running: container.running,
    });
    return 'unknown_container';
  }

  /** Considers every sandbox container: the memory registry's start after a restart. */
  async adoptAll(): Promise<number> {
    let adopted = 0;
    for (const container of await this.runtime.listSandboxContainers()) {
      if ((await this.consider(container)) === 'adopted') adopted += 1;
    }
    return adopted;
  }

  async #adopt(container: ObservedContainer): Promise<void> {
    const base = newSandbox(
      container.userId,
      {},
      this.settings.hostId,
      container.createdAt ?? undefined,
      {
        template: container.template ?? DEFAULT_TEMPLATE,
        ttlSeconds: container.ttlSeconds ?? this.settings.defaultTtlSeconds,
        idleTimeoutSeconds: container.idleTimeoutSeconds,
      },
    );
    const sandbox: Sandbox = {
      ...base,
      sandboxId: container.sandboxId,
      containerId: container.containerId,
      status: 'running',
      coldTier: container.coldSlot ? 'mounted' : 'unavailable',
    };
    await this.store.save(sandbox);
    sandboxLog(this.logger, sandbox).warn('sandbox adopted from its container', {
      container_id: container.containerId,
      container_running: container.running,
    });
  }
}
