import Docker from 'dockerode';
import { MemorySandboxStore } from './adapters/memory/memorySandboxStore.js';
import { DockerRuntime } from './adapters/docker/dockerRuntime.js';
import { loadConfig, type Settings } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { buildRoutes, type Routes } from './http/routes.js';
import { HomeSync } from './service/homeSync.js';
import { SandboxService } from './service/sandboxService.js';
import { createS3Client, S3ObjectStorage } from './adapters/s3/s3ObjectStorage.js';

/** Kept this many at most, besides the time limit, so a busy host's memory stays flat. */
const MAX_STOPPED_SANDBOXES = 1000;

export interface App {
  settings: Settings;
  logger: Logger;
  routes: Routes;
  service: SandboxService;
  close(): Promise<void>;
}

/** The composition root: clients are built once per process and closed on shutdown. */
export function buildApp(env: NodeJS.ProcessEnv = process.env): App {
  const settings = loadConfig(env);
  const logger = createLogger(settings.LOG_LEVEL, settings.LOG_FORMAT);
  const docker = new Docker();
  const store = new MemorySandboxStore({
    stoppedRetentionMs: settings.STOPPED_RETENTION_SECONDS * 1000,
    maxStopped: MAX_STOPPED_SANDBOXES,
  });
  const runtime = new DockerRuntime(docker, logger, settings.SLOW_CALL_MS);
  const s3 = settings.S3_BUCKET ? createS3(settings, logger) : undefined;
  const service = new SandboxService(
    store,
    runtime,
    {
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
  return {
    settings,
    logger,
    routes: buildRoutes({ maxCommandLength: settings.MAX_COMMAND_LENGTH }),
    service,
    close: async () => {
      await service.drain();
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

/** The process's one App: every handler of the in-process server shares it, and its registry. */
export function getApp(): App {
  app ??= buildApp();
  return app;
}
