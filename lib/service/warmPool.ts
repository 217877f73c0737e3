import { createHash } from 'node:crypto';
import { newPoolName, POOL_CONFIG_LABEL, POOL_LABEL } from '../domain/pool.js';
import { CREATED_AT_LABEL, HOST_ID_LABEL, TEMPLATE_LABEL } from '../domain/sandbox.js';
import { DEFAULT_TEMPLATE, type ResolvedConfig } from '../domain/sandboxConfig.js';
import type { Logger } from '../logger.js';
import type { ContainerRuntime, ContainerSpec, PoolContainer } from '../ports.js';
import type { ColdTier } from './coldTier.js';

export interface WarmPoolSettings {
  /** How many ready containers wait; 0: none. */
  size: number;
  hostId: string;
  /** The default template's image, limits, network and host environment: what a create gets. */
  image: string;
  cpuLimit: number;
  memoryLimitBytes: number;
  network: string;
  env: Record<string, string>;
  readyTimeoutSeconds: number;
}

/** A pool container ready for a claim. */
export interface PoolMember {
  name: string;
  containerId: string;
}

export interface PoolStats {
  target: number;
  ready: number;
}

/** Bumped when what a pool container is made with changes in a way its settings do not show. */
const POOL_FORMAT = 1;

/**
 * Containers of the default template, started and past the readiness check, waiting for a create
 * to claim one. Only the process that claims from the pool (the API) keeps it: it alone knows which
 * containers are being claimed. Its upkeep (top-up, replacement, cleaning) runs one step at a
 * time in the background, after each claim and on the reconcile interval, so it never competes
 * with itself for the engine, and never makes more than `size`.
 */
export class WarmPool {
  readonly #ready: PoolMember[] = [];
  /** Names this process made or adopted and has not given away: the upkeep leaves them alone. */
  readonly #known = new Set<string>();
  #pending: 'top_up' | 'sweep' | undefined;
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Creates that start their own container now; a top-up waits for them, not the other way. */
  #coldCreates = 0;
  #quiet: (() => void)[] = [];

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly settings: WarmPoolSettings,
    private readonly logger: Logger,
    private readonly cold: ColdTier | null = null,
  ) {}

  stats(): PoolStats {
    return { target: this.settings.size, ready: this.#ready.length };
  }

  /** Whether a create of this config can take a pool container: cpu and memory are set on claim. */
  canServe(config: ResolvedConfig): boolean {
    const { settings } = this;
    return (
      settings.size > 0 &&
      config.template === DEFAULT_TEMPLATE &&
      config.image === settings.image &&
      config.network === settings.network &&
      config.cpu <= settings.cpuLimit &&
      config.memoryBytes <= settings.memoryLimitBytes
    );
  }

  /** The limits a claim must set, or null when the pool's are the config's. */
  limitsFor(config: ResolvedConfig) {
    const { cpuLimit, memoryLimitBytes } = this.settings;
    return config.cpu === cpuLimit && config.memoryBytes === memoryLimitBytes
      ? null
      : { cpuLimit: config.cpu, memoryLimitBytes: config.memoryBytes };
  }

  /** The oldest ready container, now the caller's, who calls `release` once its claim is over. */
  take(): PoolMember | undefined {
    const member = this.#ready.shift();
    if (member) this.#hashes.delete(member.name);
    return member;
  }

  /**
   * Runs a create that starts its own container (the pool could not serve it): no pool container
   * starts meanwhile, so a burst past the pool is no slower than it would be without one.
   */
  async whileCreating<T>(create: () => Promise<T>): Promise<T> {
    this.#coldCreates += 1;
    try {
      return await create();
    } finally {
      this.#coldCreates -= 1;
      if (this.#coldCreates === 0) this.#quiet.splice(0).forEach((wake) => wake());
    }
  }

  #noColdCreates(): Promise<void> {
    if (this.#coldCreates === 0) return Promise.resolve();
    return new Promise((resolve) => this.#quiet.push(resolve));
  }

  /**
   * A taken container's claim is over (under its old name it is now a stranger to the upkeep): a
   * top-up starts in the background, after the claim rather than beside it.
   */
  release(member: PoolMember): void {
    this.#known.delete(member.name);
    void this.#kick('top_up');
  }

  /**
   * Upkeep now and every interval: containers left by an earlier run adopted or removed, the pool
   * topped up. With a size of 0 it runs once, to remove what an earlier run left.
   */
  start(intervalMs: number): void {
    const tick = () => {
      void this.#kick('sweep').finally(() => {
        if (this.#closed || this.settings.size === 0) return;
        this.#timer = setTimeout(tick, intervalMs);
        this.#timer.unref();
      });
    };
    tick();
  }

  /**
   * Stops the upkeep; the container being started finishes. Pool containers stay: the next start
   * adopts those still made as it would make them (see docs/operations.md).
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** One upkeep at a time; what is asked meanwhile runs once after it (a sweep covers a top-up). */
  #kick(kind: 'top_up' | 'sweep'): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#pending !== 'sweep') this.#pending = kind;
    this.#running ??= (async () => {
      while (this.#pending && !this.#closed) {
        const next = this.#pending;
        this.#pending = undefined;
        try {
          await this.#upkeep(next === 'sweep');
        } catch (error) {
          // The next claim or interval tries again.
          this.logger.warn('warm pool upkeep failed', { error });
        }
      }
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #upkeep(sweep: boolean): Promise<void> {
    const hash = await this.#currentHash();
    let removed = 0;
    // Made with an image or settings that changed: replaced.
    for (const member of this.#ready.filter((m) => this.#hashOf(m) !== hash)) {
      this.#drop(member);
      await this.runtime.remove(member.containerId);
      removed += 1;
    }
    if (sweep) removed += await this.#sweep(hash);
    let started = 0;
    while (!this.#closed && this.#ready.length < this.settings.size) {
      await this.#noColdCreates();
      if (this.#closed || this.#ready.length >= this.settings.size) break;
      if (!(await this.#startOne(hash))) break;
      started += 1;
    }
    if (removed > 0 || started > 0 || sweep) {
      const log = removed > 0 || started > 0 ? this.logger.info : this.logger.debug;
      log.call(this.logger, 'warm pool upkeep', {
        ...this.stats(),
        started,
        removed,
      });
    }
  }

  readonly #hashes = new Map<string, string>();

  #hashOf(member: PoolMember): string | undefined {
    return this.#hashes.get(member.name);
  }

  #drop(member: PoolMember): void {
    const at = this.#ready.indexOf(member);
    if (at >= 0) this.#ready.splice(at, 1);
    this.#known.delete(member.name);
    this.#hashes.delete(member.name);
  }

  /**
   * This host's pool containers this process does not hold: those left by an earlier run are
   * adopted while the pool has room and they are running and made as it would make them; the
   * rest are removed.
   */
  async #sweep(hash: string): Promise<number> {
    const found = await this.runtime.listPoolContainers();
    const strangers = found.filter(
      (container) => container.hostId === this.settings.hostId && !this.#known.has(container.name),
    );
    let removed = 0;
    for (const container of strangers) {
      if (this.#closed) break;
      if (await this.#adopt(container, hash)) continue;
      await this.runtime.remove(container.containerId);
      removed += 1;
    }
    return removed;
  }

  async #adopt(container: PoolContainer, hash: string): Promise<boolean> {
    if (
      !container.running ||
      container.configHash !== hash ||
      this.#ready.length >= this.settings.size
    ) {
      return false;
    }
    // Running is not ready: it may have been starting when the last run ended.
    const outcome = await this.runtime.startAndWaitReady(
      container.containerId,
      this.settings.readyTimeoutSeconds * 1000,
      () => undefined,
      { pool: true },
    );
    if (!outcome.ready) return false;
    this.#add({ name: container.name, containerId: container.containerId }, hash);
    return true;
  }

  #add(member: PoolMember, hash: string): void {
    this.#known.add(member.name);
    this.#hashes.set(member.name, hash);
    this.#ready.push(member);
  }

  /** Creates and starts one container; false when it failed (logged; the next upkeep retries). */
  async #startOne(hash: string): Promise<boolean> {
    const spec = this.#spec(hash);
    // Its slot is empty until a claim puts the user's cold tier there.
    spec.coldSlot = await this.cold?.slotFor(spec.name);
    this.#known.add(spec.name);
    let containerId: string | undefined;
    try {
      containerId = await this.runtime.create(spec);
      const outcome = await this.runtime.startAndWaitReady(
        containerId,
        this.settings.readyTimeoutSeconds * 1000,
        () => undefined,
        { pool: true },
      );
      if (!outcome.ready) throw new Error(`not ready: ${outcome.reason}`);
      this.#known.delete(spec.name);
      this.#add({ name: spec.name, containerId }, hash);
      return true;
    } catch (error) {
      this.#known.delete(spec.name);
      this.logger.warn('warm pool container failed to start', { pool_name: spec.name, error });
      if (containerId) await this.runtime.remove(containerId).catch(() => undefined);
      return false;
    }
  }

  /** What pool containers are made with, image included: a change means new containers. */
  async #currentHash(): Promise<string> {
    const { settings } = this;
    const imageId = await this.runtime.imageId(settings.image);
    const made = {
      format: POOL_FORMAT,
      imageId,
      cpu: settings.cpuLimit,
      memory: settings.memoryLimitBytes,
      network: settings.network,
      env: settings.env,
      // Made while the host could not mount: no slot, so none can be filled on a claim.
      coldSlot: (await this.cold?.unavailableReason()) === null,
    };
    return createHash('sha256').update(JSON.stringify(made)).digest('hex').slice(0, 16);
  }

  #spec(hash: string): ContainerSpec {
    const { settings } = this;
    return {
      name: newPoolName(),
      image: settings.image,
      labels: {
        [POOL_LABEL]: 'true',
        [POOL_CONFIG_LABEL]: hash,
        [HOST_ID_LABEL]: settings.hostId,
        [CREATED_AT_LABEL]: new Date().toISOString(),
        [TEMPLATE_LABEL]: DEFAULT_TEMPLATE,
      },
      env: settings.env,
      cpuLimit: settings.cpuLimit,
      memoryLimitBytes: settings.memoryLimitBytes,
      network: settings.network,
    };
  }
}

/** Removes this host's unclaimed pool containers: `npm run pool:clear`, once the API is stopped. */
export async function clearPool(runtime: ContainerRuntime, hostId: string): Promise<number> {
  const ours = (await runtime.listPoolContainers()).filter((c) => c.hostId === hostId);
  for (const container of ours) await runtime.remove(container.containerId);
  return ours.length;
}
