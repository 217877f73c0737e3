import {
  idleSince,
  PROVISIONING_STATUSES,
  UNFINISHED_STATUSES,
  type Sandbox,
} from '../domain/sandbox.js';
import type { Logger } from '../logger.js';
import type { ContainerRuntime, ObservedContainer, SandboxStore } from '../ports.js';
import { passSummaryWire } from '../wire.js';
import type { Adoption, OrphanAction } from './adoption.js';
import type { ColdTier } from './coldTier.js';
import type { EndOptions, SandboxEnding } from './ending.js';
import type { InFlight } from './inFlight.js';

export interface ReconcilerSettings {
  hostId: string;
  /** Sandboxes younger than this are left to the request creating them. */
  graceMs: number;
  /** A create or shutdown with no progress for this long was interrupted. */
  stuckMs: number;
  concurrency: number;
}

export type ReconcileAction =
  | 'container_gone'
  | 'container_exited'
  | 'expired'
  | 'create_interrupted'
  | 'shutdown_interrupted'
  | 'idle'
  | 'cold_slot_released'
  | 'cold_user_released'
  | 'cold_repaired'
  | OrphanAction;

export interface PassSummary {
  outcome: 'done' | 'skipped';
  reason?: string;
  containers: number;
  rows: number;
  skippedYoung: number;
  /** Sandboxes this process is creating or ending right now: theirs to finish. */
  skippedInFlight: number;
  actions: Partial<Record<ReconcileAction, number>>;
  failed: number;
  durationMs: number;
}

interface Step {
  /** Undefined for an orphan container: what is done is known only once it is looked at. */
  action?: ReconcileAction;
  sandboxId: string;
  /** Resolves to what was done, or null when, looked at closer, there was nothing to do. */
  run: () => Promise<ReconcileAction | null>;
}

/**
 * Brings one host's registry rows and sandbox containers into agreement, one idempotent step per
 * disagreement. A pass that cannot read the registry or the engine does nothing; a sandbox that a
 * request is still creating or ending (here, or in another process: `creating`/`starting`/
 * `shutting_down` not yet stuck) is left to it.
 */
export class Reconciler {
  #stopping = false;

  constructor(
    private readonly store: SandboxStore,
    private readonly runtime: ContainerRuntime,
    private readonly ending: SandboxEnding,
    private readonly adoption: Adoption,
    private readonly inFlight: InFlight,
    private readonly settings: ReconcilerSettings,
    private readonly logger: Logger,
    private readonly cold: ColdTier | null = null,
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
      skippedYoung: 0,
      skippedInFlight: 0,
      actions: {},
      failed: 0,
      durationMs: 0,
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
    summary.durationMs = Math.round(performance.now() - started);
    const log = summary.outcome === 'done' ? this.logger.info : this.logger.warn;
    log.call(this.logger, 'reconcile pass finished', {
      host_id: this.settings.hostId,
      ...passSummaryWire(summary),
    });
    return summary;
  }

  async #pass(summary: PassSummary, skip: (reason: string, error?: unknown) => void) {
    const { hostId } = this.settings;
    // Containers first: a row still active after its container was missing is really gone.
    let containers: ObservedContainer[];
    try {
      containers = (await this.runtime.listSandboxContainers()).filter((container) =>
        this.adoption.isOurs(container),
      );
    } catch (error) {
      return skip('the Docker engine could not be read', error);
    }
    let rows: Sandbox[];
    try {
      rows = await this.store.list({ hostId, statuses: UNFINISHED_STATUSES });
    } catch (error) {
      return skip('the registry could not be read', error);
    }
    summary.containers = containers.length;
    summary.rows = rows.length;
    const steps = this.#plan(rows, containers, summary);
    const rowIds = new Set(rows.map((row) => row.sandboxId));
    for (const container of containers) {
      if (rowIds.has(container.sandboxId)) continue;
      steps.push({
        sandboxId: container.sandboxId,
        run: () => this.adoption.consider(container),
      });
    }
    await this.#runBounded(steps, summary);
    if (!this.#stopping) await this.#sweepCold(summary);
  }

  /** After the ends: a slot whose container a step just removed is released by it, or here. */
  async #sweepCold(summary: PassSummary): Promise<void> {
    try {
      const swept = await this.cold?.sweep();
      if (!swept) return;
      const counts: [ReconcileAction, number][] = [
        ['cold_slot_released', swept.slots],
        ['cold_user_released', swept.users],
        ['cold_repaired', swept.repaired],
      ];
      for (const [action, count] of counts) {
        if (count > 0) summary.actions[action] = (summary.actions[action] ?? 0) + count;
      }
    } catch (error) {
      summary.failed += 1;
      this.logger.error('cold tier sweep failed', { error });
    }
  }

  #plan(rows: Sandbox[], containers: ObservedContainer[], summary: PassSummary): Step[] {
    const now = Date.now();
    const { graceMs, stuckMs } = this.settings;
    const byId = new Map(containers.map((container) => [container.sandboxId, container]));
    const steps: Step[] = [];
    const end = (row: Sandbox, action: ReconcileAction, options: EndOptions) =>
      steps.push({
        action,
        sandboxId: row.sandboxId,
        run: () => this.ending.end(row.sandboxId, options).then(() => action),
      });
    const abruptly = (reason: string) => ({ graceful: false, reason, lastError: reason });
    for (const row of rows) {
      if (now - row.createdAt.getTime() < graceMs) {
        summary.skippedYoung += 1;
        continue;
      }
      if (this.inFlight.has(row.sandboxId)) {
        summary.skippedInFlight += 1;
        continue;
      }
      const container = byId.get(row.sandboxId);
      const stuck = now - row.updatedAt.getTime() > stuckMs;
      if (PROVISIONING_STATUSES.includes(row.status)) {
        // Whatever the grace: its create may be slow, and only a stuck one was interrupted.
        if (stuck) end(row, 'create_interrupted', abruptly('its create was interrupted'));
      } else if (row.status === 'shutting_down') {
        if (stuck) {
          end(row, 'shutdown_interrupted', {
            graceful: false,
            reason: 'its shutdown was interrupted',
          });
        }
      } else if (!container) {
        end(row, 'container_gone', abruptly('its container is gone'));
      } else if (!container.running) {
        end(row, 'container_exited', abruptly('its container exited'));
      } else if (now > row.expiresAt.getTime()) {
        const reason = 'the sandbox reached its expiry (ttl_seconds)';
        end(row, 'expired', { graceful: true, reason, finalStatus: 'expired' });
      } else if (
        row.idleTimeoutSeconds > 0 &&
        now - idleSince(row).getTime() > row.idleTimeoutSeconds * 1000
      ) {
        const reason = `idle for more than ${row.idleTimeoutSeconds} s`;
        end(row, 'idle', { graceful: true, reason, lastError: reason, finalStatus: 'expired' });
      }
    }
    return steps;
  }

  /** At most `concurrency` steps at once; a failed step is logged and the pass goes on. */
  async #runBounded(steps: Step[], summary: PassSummary): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < steps.length && !this.#stopping) {
        const step = steps[next] as Step;
        next += 1;
        try {
          const done = await step.run();
          if (done) summary.actions[done] = (summary.actions[done] ?? 0) + 1;
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
