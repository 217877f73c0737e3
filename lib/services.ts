import type { Settings } from './config.js';
import { DEFAULT_TEMPLATE } from './domain/sandboxConfig.js';
import type { Logger } from './logger.js';
import type {
  ColdMounts,
  ContainerRuntime,
  ObjectStorage,
  SandboxFiles,
  SandboxStore,
} from './ports.js';
import { ColdTier } from './service/coldTier.js';
import { Adoption } from './service/adoption.js';
import { DiskWatch } from './service/diskWatch.js';
import { SandboxEnding } from './service/ending.js';
import { FileService } from './service/fileService.js';
import { HealthCheck } from './service/health.js';
import { HomeSync } from './service/homeSync.js';
import { InFlight } from './service/inFlight.js';
import { ProcessService } from './service/processService.js';
import { Reconciler } from './service/reconciler.js';
import { SandboxAccess } from './service/sandboxAccess.js';
import { SandboxService } from './service/sandboxService.js';
import { UserStorage } from './service/userStorage.js';
import { hostEnv } from './service/containerEnv.js';
import { WarmPool } from './service/warmPool.js';

export interface Ports {
  store: SandboxStore;
  runtime: ContainerRuntime;
  files: SandboxFiles;
  /** Null when no bucket is configured: homes are not kept. */
  objects: ObjectStorage | null;
  /** The cold tier's mounts; null when it is off or there is no bucket. */
  cold?: ColdMounts | null;
}

/** The services over the ports, wired as every process (and the unit tests) use them. */
export function composeServices(
  { store, runtime, files, objects, cold = null }: Ports,
  settings: Settings,
  logger: Logger,
) {
  const homes = objects ? new HomeSync(objects, runtime, logger) : null;
  const coldTier = new ColdTier(cold, coldOffReason(settings, objects), runtime, logger);
  const inFlight = new InFlight();
  const ending = new SandboxEnding(
    store,
    runtime,
    homes,
    inFlight,
    { shutdownTimeoutSeconds: settings.SHUTDOWN_TIMEOUT_SECONDS },
    logger,
    coldTier,
  );
  const adoption = new Adoption(
    store,
    runtime,
    // The memory registry dies with the process: its host's containers are its own to take back.
    {
      hostId: settings.HOST_ID,
      adoptOrphans: settings.SANDBOX_STORE === 'memory',
      defaultTtlSeconds: settings.MAX_SESSION_DURATION_SECONDS,
    },
    logger,
  );
  const access = new SandboxAccess(store, settings.HOST_ID, logger);
  const host = {
    s3Bucket: settings.S3_BUCKET ?? '',
    s3Region: settings.S3_REGION,
    shutdownTimeoutSeconds: settings.SHUTDOWN_TIMEOUT_SECONDS,
  };
  // Kept by the API process alone (App.start starts its upkeep): it claims from it.
  const pool = new WarmPool(
    runtime,
    {
      size: settings.WARM_POOL_SIZE,
      hostId: settings.HOST_ID,
      image: settings.SANDBOX_IMAGE,
      cpuLimit: settings.CONTAINER_CPU_LIMIT,
      memoryLimitBytes: settings.CONTAINER_MEMORY_LIMIT,
      network: settings.DOCKER_NETWORK,
      env: hostEnv(host),
      readyTimeoutSeconds: settings.READY_TIMEOUT_SECONDS,
    },
    logger,
    coldTier,
  );
  const sandboxes = new SandboxService(
    store,
    access,
    runtime,
    ending,
    inFlight,
    homes,
    {
      hostId: settings.HOST_ID,
      config: {
        templates: { ...settings.SANDBOX_TEMPLATES, [DEFAULT_TEMPLATE]: settings.SANDBOX_IMAGE },
        cpuLimit: settings.CONTAINER_CPU_LIMIT,
        memoryLimitBytes: settings.CONTAINER_MEMORY_LIMIT,
        maxSessionSeconds: settings.MAX_SESSION_DURATION_SECONDS,
        defaultNetwork: settings.DOCKER_NETWORK,
        internetNetwork: settings.INTERNET_NETWORK,
        idleTimeoutSeconds: settings.IDLE_TIMEOUT_SECONDS,
      },
      ...host,
      readyTimeoutSeconds: settings.READY_TIMEOUT_SECONDS,
      defaultCommandTimeoutSeconds: settings.COMMAND_TIMEOUT_SECONDS,
      maxOutputBytes: settings.MAX_OUTPUT_BYTES,
      claimPauseMs: settings.TEST_CLAIM_PAUSE_MS,
    },
    logger,
    pool,
    coldTier,
  );
  const processes = new ProcessService(
    access,
    runtime,
    { maxOutputBytes: settings.MAX_OUTPUT_BYTES },
    logger,
  );
  const reconciler = new Reconciler(
    store,
    runtime,
    ending,
    adoption,
    inFlight,
    {
      hostId: settings.HOST_ID,
      graceMs: settings.RECONCILE_GRACE_SECONDS * 1000,
      stuckMs: settings.RECONCILE_STUCK_SECONDS * 1000,
      concurrency: settings.RECONCILE_CONCURRENCY,
    },
    logger,
    coldTier,
  );
  const diskWatch = new DiskWatch(
    store,
    runtime,
    ending,
    { hostId: settings.HOST_ID, limitBytes: settings.CONTAINER_DISK_LIMIT },
    logger,
  );
  return {
    sandboxes,
    processes,
    files: new FileService(access, files, { maxFileBytes: settings.MAX_FILE_BYTES }, logger),
    ending,
    adoption,
    inFlight,
    reconciler,
    pool,
    diskWatch,
    coldTier,
    health: new HealthCheck(store, runtime, objects, pool, coldTier, {
      hostId: settings.HOST_ID,
      storeKind: settings.SANDBOX_STORE,
      diskLimitBytes: settings.CONTAINER_DISK_LIMIT,
    }),
    storage: new UserStorage(objects, coldTier, logger),
  };
}

export type Services = ReturnType<typeof composeServices>;

/** Why there are no cold-tier mounts to use, when there are none. */
function coldOffReason(settings: Settings, objects: ObjectStorage | null): string {
  if (settings.COLD_TIER === 'off') return 'turned off (MATRX_COLD_TIER=off)';
  if (!objects) return 'no S3 bucket is configured (MATRX_S3_BUCKET)';
  return 'no mounts were given to this process';
}
