import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureSandboxImage } from '../lib/adapters/docker/sandboxImage.js';
import { assertSchemaCurrent } from '../lib/adapters/postgres/migrations.js';
import { createPool } from '../lib/adapters/postgres/postgresSandboxStore.js';
import { createS3 } from '../lib/app.js';
import type { Settings } from '../lib/config.js';
import { startEmbeddedS3, type EmbeddedS3 } from '../lib/embeddedS3.js';
import { createLogger, type LogFormat, type Logger } from '../lib/logger.js';
import { PROJECT_ROOT } from '../lib/projectRoot.js';
import { loadSettingsOrExit, startupFailure } from '../lib/startup.js';

export type LaunchMode = 'development' | 'production';

/**
 * `npm start` (development) and `npm run serve` (production): checks the settings and the Docker
 * engine, then serves the API with serverless-offline, all handlers in one process so they share
 * one registry. With the Postgres registry it checks the schema and runs the reconciler beside the
 * API; with the memory registry the API runs the reconcile passes itself. In development it also
 * builds a missing sandbox image and starts an embedded S3 when none is configured.
 *
 * SIGTERM or SIGINT stop it cleanly: no new requests, those in flight finish (up to
 * MATRX_DRAIN_TIMEOUT_SECONDS), clients closed, the reconciler's step in flight finished, exit 0.
 */
export async function launch(mode: LaunchMode): Promise<number> {
  let settings = loadSettingsOrExit();
  const development = mode === 'development';
  const logger = createLogger(settings.LOG_LEVEL, settings.LOG_FORMAT);
  if (settings.API_KEY.length === 0) {
    logger.warn(
      'MATRX_API_KEY is empty: the API is unauthenticated, open to anyone who reaches it',
    );
  }
  await ensureSandboxImage(settings.SANDBOX_IMAGE, logger, { buildWhenMissing: development });

  let s3: EmbeddedS3 | undefined;
  if (development && !settings.S3_BUCKET && !process.env.AWS_ENDPOINT_URL_S3) {
    s3 = await startEmbeddedS3(resolve(settings.EMBEDDED_S3_DIR), settings.EMBEDDED_S3_PORT);
    Object.assign(process.env, s3.env);
    settings = { ...settings, S3_BUCKET: s3.bucket };
    logger.info('no S3 configured: started the embedded S3 server', {
      endpoint: s3.endpoint,
      bucket: s3.bucket,
      directory: settings.EMBEDDED_S3_DIR,
    });
  }
  await checkBucket(settings, logger);
  if (settings.SANDBOX_STORE === 'postgres' && !(await schemaIsCurrent(settings, logger))) {
    await s3?.close();
    return 1;
  }

  const server = spawn(
    process.execPath,
    [
      join(PROJECT_ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js'),
      'offline',
      'start',
      '--host',
      settings.HOST,
      '--httpPort',
      String(settings.PORT),
      '--lambdaPort',
      String(settings.LAMBDA_PORT),
    ],
    {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...process.env,
        // Takes the drain request before the framework takes the signal (lib/shutdownHook.ts).
        NODE_OPTIONS: [process.env.NODE_OPTIONS, `--import=${SHUTDOWN_HOOK}`]
          .filter(Boolean)
          .join(' '),
        SLS_TELEMETRY_DISABLED: '1',
        SLS_NOTIFICATIONS_MODE: 'off',
        // serverless-offline's own lines (a banner, two per request) are plain text and cost a
        // write each; the service logs its own. MATRX_LOG_LEVEL=DEBUG brings them back.
        SLS_LOG_LEVEL: settings.LOG_LEVEL === 'DEBUG' ? 'notice' : 'warning',
      },
    },
  );
  relayOutput(server.stdout, logger, settings.LOG_FORMAT, 'info');
  // At INFO the framework prints only its warnings there; at DEBUG its notices too.
  const stderrLevel = settings.LOG_LEVEL === 'DEBUG' ? 'info' : 'warn';
  relayOutput(server.stderr, logger, settings.LOG_FORMAT, stderrLevel);
  const children: ChildProcess[] = [server];
  // In production the reconciler is a service of its own (deploy/, docker-compose.yml).
  if (development && settings.SANDBOX_STORE === 'postgres') {
    const reconciler = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/reconciler/main.js')], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(reconciler);
  }
  // The memory registry's first request adopts live sandboxes and starts the passes: make it now.
  void announceWhenListening(settings.HOST, settings.PORT, logger);
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.info('stopping', { signal });
      for (const child of children.slice(1)) child.kill('SIGTERM');
      void drainThenStop(server, settings.DRAIN_TIMEOUT_SECONDS * 1000, logger);
    });
  }
  // Either one ending ends both: half of the service is not left running.
  const first = await Promise.race(children.map(exitCodeOf));
  if (!stopping) for (const child of children) child.kill('SIGTERM');
  const codes = await Promise.all(children.map(exitCodeOf));
  await s3?.close();
  logger.info('stopped', { exit_codes: codes });
  return stopping ? Math.max(...codes) : first;
}

const SHUTDOWN_HOOK = pathToFileURL(join(PROJECT_ROOT, 'dist/lib/shutdownHook.js')).href;
/** Past the drain bound, closing the clients gets this long before the framework is signalled. */
const CLOSE_MARGIN_MS = 15_000;

/** Asks the API process to drain and close its clients, then lets the framework stop. */
async function drainThenStop(server: ChildProcess, timeoutMs: number, logger: Logger) {
  const drained = new Promise<void>((resolve) => {
    server.on('message', (message: { type?: string }) => {
      if (message?.type === 'drained') resolve();
    });
    setTimeout(resolve, timeoutMs + CLOSE_MARGIN_MS).unref();
  });
  if (server.connected) {
    server.send({ type: 'drain', timeoutMs });
    await drained;
  } else {
    logger.warn('the API process cannot be asked to drain: stopping it now');
  }
  server.kill('SIGTERM');
}

function exitCodeOf(child: ChildProcess): Promise<number> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(child.exitCode ?? 0);
  }
  return new Promise((done) =>
    child.once('exit', (exitCode, signal) => done(exitCode ?? (signal ? 0 : 1))),
  );
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
      endpoint: process.env.AWS_ENDPOINT_URL_S3,
      error: (error as Error).cause ?? error,
    });
  } finally {
    client.destroy();
  }
}

/**
 * Passes the service's own log lines through and turns anything else the framework prints (its
 * banner, its warnings) into log entries too, so every line of output is one entry.
 */
function relayOutput(
  stream: Readable | null,
  logger: Logger,
  format: LogFormat,
  level: 'info' | 'warn',
): void {
  if (!stream) return;
  const isEntry = format === 'json' ? (line: string) => line.startsWith('{') : isTextEntry;
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    if (isEntry(line)) {
      process.stdout.write(`${line}\n`);
      return;
    }
    const text = line.replace(/[│┌┐└┘─]/g, '').trim();
    if (!text) return;
    // The route table of the banner is detail; anything else the framework says is worth seeing.
    if (/^(GET|POST|PUT|DELETE|PATCH|ANY|\*|http)/.test(text)) {
      logger.debug('serverless-offline', { output: text });
    } else {
      logger[level]('serverless-offline', { output: text });
    }
  });
}

const isTextEntry = (line: string) => /^\d{4}-\d{2}-\d{2}T\S+ [A-Z]+ /.test(line);

async function announceWhenListening(host: string, port: number, logger: Logger): Promise<void> {
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  for (let attempt = 0; attempt < 600; attempt += 1) {
    try {
      await fetch(`${url}/health`);
      logger.info('API listening', { url: `http://${host}:${port}`, docs: '/docs' });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
