import { ACTIVE_STATUSES } from '../domain/sandbox.js';
import type { ColdTier, ColdTierHealth } from './coldTier.js';
import type { PoolStats, WarmPool } from './warmPool.js';
import type {
  ChannelStats,
  ContainerRuntime,
  DiskLimitMode,
  ObjectStorage,
  SandboxStore,
} from '../ports.js';

export interface DependencyHealth {
  reachable: boolean;
  latencyMs: number;
  error?: string;
}

export interface Health {
  status: 'healthy' | 'degraded';
  activeSandboxes: number;
  uptimeSeconds: number;
  hostId: string;
  docker: DependencyHealth;
  registry: DependencyHealth & { store: 'memory' | 'postgres' };
  /** Users' homes in S3; not configured means nothing is kept, which is not a failure. */
  storage: DependencyHealth & { configured: boolean };
  /** How commands reach this host's sandboxes: channels open, sandboxes on the plain exec. */
  channels: ChannelStats;
  /** The warm pool: its size, and the containers ready for a create now. */
  pool: PoolStats;
  /** How the disk limit is held; `unknown` until the engine could be asked. */
  disk: { mode: DiskLimitMode | 'unknown'; limitBytes: number };
  /** Whether /data/cold is the users' S3 prefix on this host, and if not, why. */
  cold: ColdTierHealth;
}

/**
 * A dependency check that hangs (an SDK retrying, an engine busy killing a fork bomb) is reported
 * as such, not waited for: /health answers within 2 s whatever its dependencies do, with room
 * for a service whose event loop is busy (a save of 10,000 files).
 */
const PROBE_TIMEOUT_MS = 1000;

/** Times a dependency check; a failure is reported, not thrown. */
async function probe<T>(check: () => Promise<T>): Promise<[DependencyHealth, T | undefined]> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
      PROBE_TIMEOUT_MS,
    );
  });
  try {
    const value = await Promise.race([check(), timeout]);
    return [{ reachable: true, latencyMs: elapsed() }, value];
  } catch (error) {
    return [{ reachable: false, latencyMs: elapsed(), error: (error as Error).message }, undefined];
  } finally {
    clearTimeout(timer);
  }
}

/** The service's health: each dependency probed at once, and this host's active sandboxes. */
export class HealthCheck {
  readonly #startedAt = Date.now();

  constructor(
    private readonly store: SandboxStore,
    private readonly runtime: ContainerRuntime,
    /** Null when no bucket is configured. */
    private readonly storage: ObjectStorage | null,
    private readonly pool: Pick<WarmPool, 'stats'>,
    private readonly cold: Pick<ColdTier, 'health'>,
    private readonly settings: {
      hostId: string;
      storeKind: 'memory' | 'postgres';
      diskLimitBytes: number;
    },
  ) {}

  async check(): Promise<Health> {
    const { hostId, storeKind } = this.settings;
    const { storage } = this;
    const [[docker, diskMode], [registry, active], [bucket], [, cold]] = await Promise.all([
      // The mode is asked of the engine once, then remembered: no cost past the first check.
      probe(async () => {
        await this.runtime.ping();
        return this.runtime.diskLimitMode();
      }),
      probe(() => this.store.count({ hostId, statuses: ACTIVE_STATUSES })),
      probe(async () => storage?.checkBucket()),
      probe(() => this.cold.health()),
    ]);
    const healthy = docker.reachable && registry.reachable && bucket.reachable;
    return {
      status: healthy ? 'healthy' : 'degraded',
      activeSandboxes: active ?? 0,
      uptimeSeconds: Math.floor((Date.now() - this.#startedAt) / 1000),
      hostId,
      docker,
      registry: { store: storeKind, ...registry },
      storage: { configured: storage !== null, ...bucket },
      channels: this.runtime.channelStats(),
      pool: this.pool.stats(),
      disk: { mode: diskMode ?? 'unknown', limitBytes: this.settings.diskLimitBytes },
      cold: cold ?? { available: false, reason: 'its check did not answer', mountedUsers: 0 },
    };
  }
}
