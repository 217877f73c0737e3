import Docker from 'dockerode';
import { MemorySandboxStore } from './adapters/memory/memorySandboxStore.js';
import { DockerRuntime } from './adapters/docker/dockerRuntime.js';
import { assertSchemaCurrent } from './adapters/postgres/migrations.js';
import { createPool, PostgresSandboxStore } from './adapters/postgres/postgresSandboxStore.js';
import { loadConfig, type Settings } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { buildRoutes, type Routes } from './http/routes.js';
import { HomeSync } from './service/homeSync.js';
import { ReconcileLoop } from './service/reconcileLoop.js';
import { Reconciler } from './service/reconciler.js';
import { SandboxService } from './service/sandboxService.js';
import { createS3Client, S3ObjectStorage } from './adapters/s3/s3ObjectStorage.js';
import type { SandboxStore } from './ports.js';

/** Kept this many at most, besides the time limit, so a busy host's memory stays flat. */
const MAX_STOPPED_SANDBOXES = 1000;

export interface App {
  settings: Settings;
  logger: Logger;
  routes: Routes;
  service: SandboxService;
  reconciler: Reconciler;
  /**
   * Resolves once the registry can be used: a current schema, or (memory) live sandboxes adopted.
   */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** The composition root: clients are built once per process and closed on shutdown. */
export function buildApp(settings: Settings = loadConfig()): App {
  const logger = createLogger(settings.LOG_LEVEL, settings.LOG_FORMAT);
  const docker = new Docker();
  const pool =
    settings.DATABASE_URL && settings.SANDBOX_STORE === 'postgres'
      ? createPool(
          {
            url: settings.DATABASE_URL,
            maxConnections: settings.DATABASE_POOL_SIZE,
            connectTimeoutMs: settings.DATABASE_CONNECT_TIMEOUT_MS,
          },
          logger,
        )
      : undefined;
  const store: SandboxStore = pool
    ? new PostgresSandboxStore(pool, logger, settings.SLOW_CALL_MS)
    : new MemorySandboxStore({
        stoppedRetentionMs: settings.STOPPED_RETENTION_SECONDS * 1000,
        maxStopped: MAX_STOPPED_SANDBOXES,
      });
  const runtime = new DockerRuntime(docker, logger, settings.SLOW_CALL_MS);
  const s3 = settings.S3_BUCKET ? createS3(settings, logger) : undefined;
  const service = new SandboxService(
    store,
    runtime,
    {
      hostId: settings.HOST_ID,
      storeKind: settings.SANDBOX_STORE,
      image: settings.SANDBOX_IMAGE,
      network: settings.DOCKER_NETWORK,
      cpuLimit: settings.CONTAINER_CPU_LIMIT,
      memoryLimitBytes: settings.CONTAINER_MEMORY_LIMIT,
      s3Bucket: settings.S3_BUCKET ?? '',
      s3Region: settings.S3_REGION,
      shutdownTimeoutSeconds: settings.SHUTDOWN_TIMEOUT_SECONDS,
      readyTimeoutSeconds: settings.READY_TIMEOUT_SECONDS,
      defaultCommandTimeoutSeconds: settings.COMMAND_TIMEOUT_SECONDS,
      maxOutputBytes: settings.MAX_OUTPUT_BYTES,
    },
    logger,
    s3 ? new HomeSync(s3.storage, runtime, logger) : null,
  );
  const reconciler = new Reconciler(
    store,
    runtime,
    service,
    {
      hostId: settings.HOST_ID,
      graceMs: settings.RECONCILE_GRACE_SECONDS * 1000,
      stuckMs: settings.RECONCILE_STUCK_SECONDS * 1000,
      maxSessionMs: settings.MAX_SESSION_DURATION_SECONDS * 1000,
      concurrency: settings.RECONCILE_CONCURRENCY,
      adoptOrphans: !pool,
    },
    logger,
  );
  let readiness: Promise<void> | undefined;
  const prepare = async () => {
    if (pool) {
      await assertSchemaCurrent(pool);
      return;
    }
    const adopted = await reconciler.adoptOrphans();
    if (adopted > 0) logger.info('memory registry: adopted live sandboxes', { adopted });
  };
  return {
    settings,
    logger,
    routes: buildRoutes({ maxCommandLength: settings.MAX_COMMAND_LENGTH }),
    service,
    reconciler,
    ready: () => {
      // A success is kept; a failure (a database not up yet) is tried again by the next caller.
      readiness ??= prepare().catch((error: unknown) => {
        readiness = undefined;
        throw error;
      });
      return readiness;
    },
    close: async () => {
      reconciler.stop();
      await service.drain();
      await store.close();
      runtime.close();
      s3?.client.destroy();
    },
  };
}

/** The S3 client and storage of the configured bucket. */
export function createS3(settings: Settings, logger: Logger) {
  const s3Settings = {
    bucket: settings.S3_BUCKET ?? '',
    region: settings.S3_REGION,
    endpoint: process.env.AWS_ENDPOINT_URL_S3 || undefined,
    slowCallMs: settings.SLOW_CALL_MS,
  };
  const client = createS3Client(s3Settings);
  return { client, storage: new S3ObjectStorage(client, s3Settings, logger) };
}

let app: App | undefined;
let loop: ReconcileLoop | undefined;

/**
 * The process's one App: every handler of the in-process server shares it, and its registry.
 * With the memory registry no other process can reconcile it, so the API runs the passes itself.
 */
export function getApp(): App {
  if (app) return app;
  const built = buildApp();
  app = built;
  if (built.settings.SANDBOX_STORE === 'memory') {
    loop = new ReconcileLoop(
      built.reconciler,
      built.settings.RECONCILE_INTERVAL_SECONDS * 1000,
      built.logger,
      false,
    );
    // Passes adopt too, so the loop starts even if this first adoption failed (Docker down).
    built
      .ready()
      .catch((error: unknown) => built.logger.error('adopting live sandboxes failed', { error }))
      .finally(() => loop?.start());
  }
  return built;
}

/** Stops the in-process reconciler and closes the App's clients. */
export async function closeApp(): Promise<void> {
  await loop?.stop();
  await app?.close();
}
