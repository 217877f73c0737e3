import { ACTIVE_STATUSES, type Sandbox, type SandboxStatus } from '../domain/sandbox.js';
import type { Logger } from '../logger.js';
import type { ContainerRuntime, ObservedContainer, SandboxStore } from '../ports.js';
import type { EndOptions, SandboxService } from './sandboxService.js';

export interface ReconcilerSettings {
  hostId: string;
  /** Sandboxes younger than this are left to the request creating them. */
  graceMs: number;
  /** A create or shutdown with no progress for this long was interrupted. */
  stuckMs: number;
  maxSessionMs: number;
  concurrency: number;
  /**
   * With the memory registry the registry dies with the process, so a container with no row is
   * one this host made before a restart: it is adopted. With Postgres it is a stranger: left alone.
   */
  adoptOrphans: boolean;
}

export type ReconcileAction =
  | 'container_gone'
  | 'container_exited'
  | 'expired'
  | 'create_interrupted'
  | 'shutdown_interrupted'
  | 'adopted'
  | 'unknown_container';

export interface PassSummary {
  outcome: 'done' | 'skipped';
  reason?: string;
  containers: number;
  rows: number;
  skipped_young: number;
  actions: Partial<Record<ReconcileAction, number>>;
  failed: number;
  duration_ms: number;
}

/** The statuses in which a sandbox still has work to do; terminal rows are history. */
const UNFINISHED: readonly SandboxStatus[] = [
  'creating',
  'starting',
  'ready',
  'running',
  'shutting_down',
];

interface Step {
  action: ReconcileAction;
  sandboxId: string;
  /** Resolves false when, looked at closer, there was nothing to do. */
  run: () => Promise<boolean>;
}

/**
 * Brings one host's registry rows and sandbox containers into agreement, one idempotent step per
 * disagreement. A pass that cannot read the registry or the engine does nothing.
 */
export class Reconciler {
  #stopping = false;

  constructor(
    private readonly store: SandboxStore,
    private readonly runtime: ContainerRuntime,
    private readonly service: SandboxService,
    private readonly settings: ReconcilerSettings,
    private readonly logger: Logger,
  ) {}

  /** No step starts after this; the ones running finish. */
  stop(): void {
    this.#stopping = true;
  }

  async runPass(): Promise<PassSummary> {
    const started = performance.now();
    const summary: PassSummary = {
      outcome: 'done',
      containers: 0,
      rows: 0,
      skipped_young: 0,
      actions: {},
      failed: 0,
      duration_ms: 0,
    };
    const skip = (reason: string, error?: unknown) => {
      Object.assign(summary, { outcome: 'skipped', reason });
      if (error) this.logger.error(`reconcile pass did nothing: ${reason}`, { error });
    };
    try {
      const ran = await this.store.withExclusiveLock(`reconcile:${this.settings.hostId}`, () =>
        this.#pass(summary, skip),
      );
      if (!ran) skip('another reconciler of this host is running a pass');
    } catch (error) {
      skip('the registry could not be read', error);
    }
    summary.duration_ms = Math.round(performance.now() - started);
    const log = summary.outcome === 'done' ? this.logger.info : this.logger.warn;
    log.call(this.logger, 'reconcile pass finished', {
      host_id: this.settings.hostId,
      ...summary,
    });
    return summary;
  }

  async #pass(summary: PassSummary, skip: (reason: string, error?: unknown) => void) {
    const { hostId } = this.settings;
    // Containers first: a row still active after its container was missing is really gone.
    let containers: ObservedContainer[];
    try {
      containers = (await this.runtime.listSandboxContainers()).filter(
        (container) => container.hostId === null || container.hostId === hostId,
      );
    } catch (error) {
      return skip('the Docker engine could not be read', error);
    }
    let rows: Sandbox[];
    try {
      rows = await this.store.list({ hostId, statuses: UNFINISHED });
    } catch (error) {
      return skip('the registry could not be read', error);
    }
    summary.containers = containers.length;
    summary.rows = rows.length;
    const steps = this.#plan(rows, containers, summary);
    const rowIds = new Set(rows.map((row) => row.sandboxId));
    for (const container of containers) {
      if (!rowIds.has(container.sandboxId)) steps.push(this.#orphanStep(container));
    }
    await this.#runBounded(steps, summary);
  }

  /** Adopts every sandbox container with no row: the memory registry's start after a restart. */
  async adoptOrphans(): Promise<number> {
    const containers = await this.runtime.listSandboxContainers();
    let adopted = 0;
    for (const container of containers) {
      const ours = container.hostId === null || container.hostId === this.settings.hostId;
      if (ours && !(await this.store.get(container.sandboxId))) {
        await this.service.adopt(container);
        adopted += 1;
      }
    }
    return adopted;
  }

  #plan(rows: Sandbox[], containers: ObservedContainer[], summary: PassSummary): Step[] {
    const now = Date.now();
    const { graceMs, stuckMs, maxSessionMs } = this.settings;
    const byId = new Map(containers.map((container) => [container.sandboxId, container]));
    const steps: Step[] = [];
    const end = (row: Sandbox, action: ReconcileAction, options: EndOptions) =>
      steps.push({
        action,
        sandboxId: row.sandboxId,
        run: () => this.service.end(row, options).then(() => true),
      });
    for (const row of rows) {
      if (now - row.createdAt.getTime() < graceMs) {
        summary.skipped_young += 1;
        continue;
      }
      const container = byId.get(row.sandboxId);
      const stuck = now - row.updatedAt.getTime() > stuckMs;
      if (row.status === 'starting' && stuck) {
        // Past any ready timeout: the request that was waiting for it is gone.
        const reason = 'its create was interrupted';
        end(row, 'create_interrupted', { graceful: false, reason, lastError: reason });
      } else if (ACTIVE_STATUSES.includes(row.status)) {
        if (!container) {
          const reason = 'its container is gone';
          end(row, 'container_gone', { graceful: false, reason, lastError: reason });
        } else if (!container.running) {
          const reason = 'its container exited';
          end(row, 'container_exited', { graceful: false, reason, lastError: reason });
        } else if (now - row.createdAt.getTime() > maxSessionMs) {
          const reason = 'the session reached its maximum duration';
          end(row, 'expired', { graceful: true, reason, finalStatus: 'expired' });
        }
      } else if (row.status === 'creating' && stuck) {
        const reason = 'its create was interrupted';
        end(row, 'create_interrupted', { graceful: false, reason, lastError: reason });
      } else if (row.status === 'shutting_down' && stuck) {
        const reason = 'its shutdown was interrupted';
        end(row, 'shutdown_interrupted', { graceful: false, reason });
      }
    }
    return steps;
  }

  #orphanStep(container: ObservedContainer): Step {
    const { sandboxId } = container;
    return {
      action: this.settings.adoptOrphans ? 'adopted' : 'unknown_container',
      sandboxId,
      run: async () => {
        // Its row may be finished (listed rows are unfinished ones) or another host's.
        if (await this.store.get(sandboxId)) return false;
        if (this.settings.adoptOrphans) {
          await this.service.adopt(container);
          return true;
        }
        this.logger.warn('sandbox container has no registry row: left alone', {
          sandbox_id: sandboxId,
          user_id: container.userId,
          container_id: container.containerId,
          container_running: container.running,
        });
        return true;
      },
    };
  }

  /** At most `concurrency` steps at once; a failed step is logged and the pass goes on. */
  async #runBounded(steps: Step[], summary: PassSummary): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < steps.length && !this.#stopping) {
        const step = steps[next] as Step;
        next += 1;
        try {
          if ((await step.run()) === false) continue;
          summary.actions[step.action] = (summary.actions[step.action] ?? 0) + 1;
        } catch (error) {
          summary.failed += 1;
          this.logger.error('reconcile step failed', {
            action: step.action,
            sandbox_id: step.sandboxId,
            error,
          });
        }
      }
    };
    const workers = Math.min(this.settings.concurrency, steps.length);
    await Promise.all(Array.from({ length: workers }, worker));
  }
}
