import Docker from 'dockerode';
import { MemorySandboxStore } from './adapters/memory/memorySandboxStore.js';
import { DockerRuntime } from './adapters/docker/dockerRuntime.js';
import { loadConfig, type Settings } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { buildRoutes, type Routes } from './http/routes.js';
import { SandboxService } from './service/sandboxService.js';

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
  const service = new SandboxService(
    store,
    new DockerRuntime(docker, logger, settings.SLOW_CALL_MS),
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
  );
  return {
    settings,
    logger,
    routes: buildRoutes({ maxCommandLength: settings.MAX_COMMAND_LENGTH }),
    service,
    close: async () => {
      await service.drain();
    },
  };
}

let app: App | undefined;

/** The process's one App: every handler of the in-process server shares it, and its registry. */
export function getApp(): App {
  app ??= buildApp();
  return app;
}
