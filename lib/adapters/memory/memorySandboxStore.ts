import {
  canTransition,
  expiryOf,
  TERMINAL_STATUSES,
  type Sandbox,
  type SandboxStatus,
} from '../../domain/sandbox.js';
import { ConflictError } from '../../errors.js';
import type { SandboxFilter, SandboxStore, StatusChange, StatusUpdate } from '../../ports.js';

export interface MemoryStoreOptions {
  /** How long a stopped or expired sandbox stays readable before it is forgotten. */
  stoppedRetentionMs: number;
  /** At most this many stopped or expired sandboxes are kept, oldest forgotten first. */
  maxStopped: number;
  now?: () => Date;
}

/** The default registry: one per process, so the API must run its handlers in one process. */
export class MemorySandboxStore implements SandboxStore {
  readonly #sandboxes = new Map<string, Sandbox>();
  readonly #options: Required<MemoryStoreOptions>;
  readonly #locks = new Set<string>();

  constructor(options: MemoryStoreOptions) {
    this.#options = { now: () => new Date(), ...options };
  }

  async save(sandbox: Sandbox): Promise<void> {
    this.#sandboxes.set(sandbox.sandboxId, structuredClone(sandbox));
    this.#forgetOldStopped();
  }

  async get(sandboxId: string): Promise<Sandbox | null> {
    const sandbox = this.#sandboxes.get(sandboxId);
    return sandbox ? structuredClone(sandbox) : null;
  }

  async list(filter: SandboxFilter = {}): Promise<Sandbox[]> {
    return this.#matching(filter)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
      .map((sandbox) => structuredClone(sandbox));
  }

  async count(filter: SandboxFilter = {}): Promise<number> {
    return this.#matching(filter).length;
  }

  #matching({ userId, hostId, statuses }: SandboxFilter): Sandbox[] {
    this.#forgetOldStopped();
    return [...this.#sandboxes.values()].filter(
      (sandbox) =>
        (userId === undefined || sandbox.userId === userId) &&
        (hostId === undefined || sandbox.hostId === hostId) &&
        (statuses === undefined || statuses.includes(sandbox.status)),
    );
  }

  async delete(sandboxId: string): Promise<void> {
    this.#sandboxes.delete(sandboxId);
  }

  async updateStatus(sandboxId: string, change: StatusChange): Promise<StatusUpdate | null> {
    const sandbox = this.#sandboxes.get(sandboxId);
    if (!sandbox) return null;
    const previous = sandbox.status;
    if (previous !== change.status && !canTransition(previous, change.status)) {
      throw new ConflictError(
        `Sandbox ${sandboxId} cannot move from ${previous} to ${change.status}`,
      );
    }
    sandbox.status = change.status;
    if (change.containerId !== undefined) sandbox.containerId = change.containerId;
    if (change.lastError !== undefined) sandbox.lastError = change.lastError;
    if (change.coldTier !== undefined) sandbox.coldTier = change.coldTier;
    sandbox.updatedAt = this.#options.now();
    this.#forgetOldStopped();
    return { sandbox: structuredClone(sandbox), previous };
  }

  async recordError(sandboxId: string, lastError: string): Promise<boolean> {
    const sandbox = this.#sandboxes.get(sandboxId);
    if (!sandbox) return false;
    sandbox.lastError = lastError;
    sandbox.updatedAt = this.#options.now();
    return true;
  }

  async extend(sandboxId: string, ttlSeconds: number, statuses: readonly SandboxStatus[]) {
    const sandbox = this.#sandboxes.get(sandboxId);
    if (!sandbox || !statuses.includes(sandbox.status)) return null;
    const now = this.#options.now();
    Object.assign(sandbox, { ttlSeconds, expiresAt: expiryOf(now, ttlSeconds), updatedAt: now });
    return structuredClone(sandbox);
  }

  async touchActivity(sandboxId: string, at: Date): Promise<void> {
    const sandbox = this.#sandboxes.get(sandboxId);
    if (sandbox) sandbox.lastActivityAt = at;
  }

  async touchHeartbeat(sandboxId: string, hostId: string, at: Date): Promise<Sandbox | null> {
    const sandbox = this.#sandboxes.get(sandboxId);
    if (!sandbox || sandbox.hostId !== hostId) return null;
    sandbox.lastHeartbeatAt = at;
    return structuredClone(sandbox);
  }

  async withExclusiveLock(name: string, work: () => Promise<void>): Promise<boolean> {
    if (this.#locks.has(name)) return false;
    this.#locks.add(name);
    try {
      await work();
      return true;
    } finally {
      this.#locks.delete(name);
    }
  }

  async close(): Promise<void> {}

  #forgetOldStopped(): void {
    const cutoff = this.#options.now().getTime() - this.#options.stoppedRetentionMs;
    const stopped = [...this.#sandboxes.values()]
      .filter((sandbox) => TERMINAL_STATUSES.includes(sandbox.status))
      .sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime());
    const excess = stopped.length - this.#options.maxStopped;
    stopped.forEach((sandbox, index) => {
      if (index < excess || sandbox.updatedAt.getTime() < cutoff) {
        this.#sandboxes.delete(sandbox.sandboxId);
      }
    });
  }
}
