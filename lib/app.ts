import Docker from 'dockerode';
import { DockerRuntime } from './adapters/docker/dockerRuntime.js';
import { RcloneColdMounts } from './adapters/fuse/rcloneColdMounts.js';
import { MemorySandboxStore } from './adapters/memory/memorySandboxStore.js';
import { assertSchemaCurrent } from './adapters/postgres/migrations.js';
import { createPool, PostgresSandboxStore } from './adapters/postgres/postgresSandboxStore.js';
import { createS3Client, S3ObjectStorage } from './adapters/s3/s3ObjectStorage.js';
import { loadConfig, type Settings } from './config.js';
import { AGENT_GID, AGENT_UID, DEFAULT_EXEC_USER } from './domain/sandbox.js';
import { RequestTracker } from './http/draining.js';
import { buildRoutes, routeLimits, type Routes } from './http/routes.js';
import { createLogger, type Logger } from './logger.js';
import type { SandboxStore } from './ports.js';
import { PassLoop } from './service/passLoop.js';
import type { DiskWatch } from './service/diskWatch.js';
import type { Reconciler } from './service/reconciler.js';
import type { FileService } from './service/fileService.js';
import type { ProcessService } from './service/processService.js';
import type { SandboxService } from './service/sandboxService.js';
import type { HealthCheck } from './service/health.js';
import type { UserStorage } from './service/userStorage.js';
import { composeServices, type Services } from './services.js';

export interface App {
  settings: Settings;
  logger: Logger;
  routes: Routes;
  /** The API's requests in flight, for a clean shutdown. */
  requests: RequestTracker;
  sandboxes: SandboxService;
  processes: ProcessService;
  files: FileService;
  health: HealthCheck;
  storage: UserStorage;
  reconciler: Reconciler;
  diskWatch: DiskWatch;
  /**
   * Resolves once the registry can be used: a current schema, or (memory) live sandboxes adopted.
   * A failure (a database not up yet) is tried again by the next caller.
   */
  ready(): Promise<void>;
  /**
   * The API process's start: the registry made ready now, and with the memory registry, which no
   * other process can reconcile, the reconcile passes run here.
   */
  start(): void;
  close(): Promise<void>;
}

/** The composition root: clients are built once per process and closed on shutdown. */
export function buildApp(settings: Settings = loadConfig()): App {
  const logger = createLogger(settings.LOG_LEVEL, settings.LOG_FORMAT);
  const memory = settings.SANDBOX_STORE === 'memory';
  const pool = memory
    ? undefined
    : createPool(
        {
          url: settings.DATABASE_URL ?? '',
          maxConnections: settings.DATABASE_POOL_SIZE,
          connectTimeoutMs: settings.DATABASE_CONNECT_TIMEOUT_MS,
        },
        logger,
      );
  const store: SandboxStore = pool
    ? new PostgresSandboxStore(pool, logger, settings.SLOW_CALL_MS)
    : new MemorySandboxStore({
        stoppedRetentionMs: settings.STOPPED_RETENTION_SECONDS * 1000,
        maxStopped: settings.MAX_STOPPED_SANDBOXES,
      });
  const runtime = dockerRuntime(settings, logger);
  const s3 = settings.S3_BUCKET ? createS3(settings, logger) : undefined;
  const cold = s3 && settings.COLD_TIER === 'auto' ? coldMounts(settings, logger) : null;
  const services = composeServices(
    { store, runtime, files: runtime.files, objects: s3?.storage ?? null, cold },
    settings,
    logger,
  );
  const { reconciler, adoption, inFlight, pool: warmPool } = services;
  // With the memory registry no other process can reconcile, nor watch the disk: this one does.
  const loops = memory ? backgroundLoops(services, settings, logger, false) : [];

  let readiness: Promise<void> | undefined;
  const prepare = async () => {
    if (pool) return assertSchemaCurrent(pool);
    const adopted = await adoption.adoptAll();
    if (adopted > 0) logger.info('memory registry: adopted live sandboxes', { adopted });
  };
  const ready = () => {
    readiness ??= prepare().catch((error: unknown) => {
      readiness = undefined;
      throw error;
    });
    return readiness;
  };
  return {
    settings,
    logger,
    routes: buildRoutes(routeLimits(settings)),
    requests: new RequestTracker(),
    sandboxes: services.sandboxes,
    processes: services.processes,
    files: services.files,
    health: services.health,
    storage: services.storage,
    reconciler,
    diskWatch: services.diskWatch,
    ready,
    start: () => {
      // Asked now, not by the first create or /health; an engine down now is asked again later.
      runtime.diskLimitMode().then(
        (mode) => logger.info('disk limit', { mode, limit_bytes: settings.CONTAINER_DISK_LIMIT }),
        (error: unknown) => logger.warn('disk limit mode not known yet', { error }),
      );
      services.coldTier.unavailableReason().then(
        (reason) => {
          if (reason) logger.warn('cold tier unavailable: /data/cold is not kept', { reason });
          else logger.info('cold tier available', { root: settings.COLD_ROOT });
        },
        (error: unknown) => logger.error('cold tier check failed', { error }),
      );
      // Passes adopt too, so the loop starts even if this first adoption failed (Docker down).
      ready()
        .catch((error: unknown) => logger.error('the registry is not ready', { error }))
        .finally(() => {
          loops.forEach((loop) => loop.start());
          warmPool.start(settings.RECONCILE_INTERVAL_SECONDS * 1000);
        });
    },
    close: async () => {
      await warmPool.close();
      await Promise.all(loops.map((loop) => loop.stop()));
      reconciler.stop();
      await inFlight.drain();
      await services.coldTier.close();
      await store.close();
      runtime.close();
      s3?.client.destroy();
    },
  };
}

/**
 * The passes of the process that looks after this host's sandboxes: the reconciler every
 * MATRX_RECONCILE_INTERVAL_SECONDS, the disk watch every MATRX_HEALTHCHECK_INTERVAL_SECONDS.
 */
/** The Docker adapter as every process of the service builds it from its settings. */
export function dockerRuntime(settings: Settings, logger: Logger): DockerRuntime {
  return new DockerRuntime(new Docker(), logger, {
    slowCallMs: settings.SLOW_CALL_MS,
    firstCommandUser: DEFAULT_EXEC_USER,
    processOutputBytes: settings.PROCESS_OUTPUT_BYTES,
    ociRuntime: settings.DOCKER_RUNTIME,
    diskLimitBytes: settings.CONTAINER_DISK_LIMIT,
    diskProbeImage: settings.SANDBOX_IMAGE,
  });
}

export function backgroundLoops(
  services: Pick<Services, 'reconciler' | 'diskWatch'>,
  settings: Settings,
  logger: Logger,
  keepsProcessAlive: boolean,
): PassLoop[] {
  return [
    new PassLoop(
      'reconcile',
      services.reconciler,
      settings.RECONCILE_INTERVAL_SECONDS * 1000,
      logger,
      keepsProcessAlive,
    ),
    new PassLoop(
      'disk check',
      services.diskWatch,
      settings.HEALTHCHECK_INTERVAL_SECONDS * 1000,
      logger,
      keepsProcessAlive,
    ),
  ];
}

/** The cold tier's mounts of this host, over the configured bucket. */
function coldMounts(settings: Settings, logger: Logger): RcloneColdMounts {
  return new RcloneColdMounts(
    {
      root: settings.COLD_ROOT,
      bucket: settings.S3_BUCKET ?? '',
      region: settings.S3_REGION,
      endpoint: settings.S3_ENDPOINT,
      dirCacheSeconds: settings.COLD_DIR_CACHE_SECONDS,
      uid: AGENT_UID,
      gid: AGENT_GID,
    },
    logger,
  );
}

/** The S3 client and storage of the configured bucket. */
export function createS3(settings: Settings, logger: Logger) {
  const s3Settings = {
    bucket: settings.S3_BUCKET ?? '',
    region: settings.S3_REGION,
    endpoint: settings.S3_ENDPOINT,
    slowCallMs: settings.SLOW_CALL_MS,
  };
  const client = createS3Client(s3Settings);
  return { client, storage: new S3ObjectStorage(client, s3Settings, logger) };
}
