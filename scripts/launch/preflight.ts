import { resolve } from 'node:path';
import { engineRuntimes, runtimeProblem } from '../../lib/adapters/docker/ociRuntime.js';
import { ensureSandboxImage } from '../../lib/adapters/docker/sandboxImage.js';
import { assertSchemaCurrent } from '../../lib/adapters/postgres/migrations.js';
import { createPool } from '../../lib/adapters/postgres/postgresSandboxStore.js';
import { createS3 } from '../../lib/app.js';
import { variableOf, type Settings } from '../../lib/config.js';
import { startEmbeddedS3, type EmbeddedS3 } from '../../lib/embeddedS3.js';
import type { Logger } from '../../lib/logger.js';
import { startupFailure } from '../../lib/startup.js';

export interface Prepared {
  settings: Settings;
  /** The development S3 server this process runs, to be closed when it stops. */
  embeddedS3?: EmbeddedS3;
}

/**
 * What is checked (and in development, provided) before the API starts: the API key warning, the
 * sandboxes' OCI runtime, the sandbox image (built when missing or stale, in development), an S3 (the embedded server, in
 * development, when none is set), the bucket, and a current schema. Null when the service must
 * not start.
 */
export async function preflight(
  settings: Settings,
  logger: Logger,
  development: boolean,
): Promise<Prepared | null> {
  if (settings.API_KEY.length === 0) {
    logger.warn(
      'MATRX_API_KEY is empty: the API is unauthenticated, open to anyone who reaches it',
    );
  }
  if (settings.DOCKER_RUNTIME && !(await runtimeRegistered(settings.DOCKER_RUNTIME, logger))) {
    return null;
  }
  await ensureSandboxImage(settings.SANDBOX_IMAGE, logger, { buildWhenNeeded: development });

  let embeddedS3: EmbeddedS3 | undefined;
  if (development && !settings.S3_BUCKET && !settings.S3_ENDPOINT) {
    embeddedS3 = await startEmbeddedS3(
      resolve(settings.EMBEDDED_S3_DIR),
      settings.EMBEDDED_S3_PORT,
    );
    // The API process reads its settings from the environment it inherits.
    Object.assign(process.env, embeddedS3.env);
    settings = { ...settings, S3_BUCKET: embeddedS3.bucket, S3_ENDPOINT: embeddedS3.endpoint };
    logger.info('no S3 configured: started the embedded S3 server', {
      endpoint: embeddedS3.endpoint,
      bucket: embeddedS3.bucket,
      directory: settings.EMBEDDED_S3_DIR,
    });
  }
  await checkBucket(settings, logger);
  if (settings.SANDBOX_STORE === 'postgres' && !(await schemaIsCurrent(settings, logger))) {
    await embeddedS3?.close();
    return null;
  }
  return { settings, embeddedS3 };
}

/** A runtime the engine does not have stops startup, before a sandbox could fail on it. */
async function runtimeRegistered(runtime: string, logger: Logger): Promise<boolean> {
  const variable = variableOf('DOCKER_RUNTIME');
  const engine = await engineRuntimes();
  if (!engine) {
    logger.warn(`${variable}=${runtime} not checked: the Docker engine is unreachable`);
    return true;
  }
  const problem = runtimeProblem(variable, runtime, engine);
  if (problem) {
    logger.error(problem, { runtimes: engine.names });
    return false;
  }
  logger.info('sandboxes run on an OCI runtime of their own', { runtime });
  return true;
}

/** The launcher refuses an outdated schema, and says which command fixes it. */
async function schemaIsCurrent(settings: Settings, logger: Logger): Promise<boolean> {
  const pool = createPool(
    {
      url: settings.DATABASE_URL ?? '',
      maxConnections: 1,
      connectTimeoutMs: settings.DATABASE_CONNECT_TIMEOUT_MS,
    },
    logger,
  );
  try {
    await assertSchemaCurrent(pool);
    return true;
  } catch (error) {
    logger.error(...startupFailure(error));
    return false;
  } finally {
    await pool.end();
  }
}

/** A missing or forbidden bucket is said once, clearly, at startup: not a crash later. */
async function checkBucket(settings: Settings, logger: Logger): Promise<void> {
  if (!settings.S3_BUCKET) {
    logger.warn("MATRX_S3_BUCKET is not set: users' home directories will not be kept");
    return;
  }
  const { client, storage } = createS3(settings, logger);
  try {
    await storage.checkBucket();
    logger.info('S3 bucket ready', { bucket: settings.S3_BUCKET });
  } catch (error) {
    logger.error(`S3 bucket ${settings.S3_BUCKET} is missing, forbidden or unreachable`, {
      bucket: settings.S3_BUCKET,
      endpoint: settings.S3_ENDPOINT,
      error: (error as Error).cause ?? error,
    });
  } finally {
    client.destroy();
  }
}
