import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Settings } from '../../lib/config.js';
import type { Logger } from '../../lib/logger.js';
import { PROJECT_ROOT } from '../../lib/projectRoot.js';
import { relayOutput } from './relayOutput.js';

/** Builds and starts the API's App in the server process, and drains it on request. */
const API_PROCESS = pathToFileURL(join(PROJECT_ROOT, 'dist/lib/apiProcess.js')).href;
/** Past the drain bound, closing the clients gets this long before the framework is signalled. */
const CLOSE_MARGIN_MS = 15_000;

/**
 * How far V8 lets the old generation grow past what survived its last full collection before it
 * starts another (its own default is decided per collection, from how fast it collects against
 * how fast the program allocates). On a slow 2-core machine that default came out low enough
 * that, once the first full collection had run, each 50 MiB file moved after it started one or
 * two more (70 to 120 ms of marking on four threads each, for a heap whose size did not change):
 * the service's 50 MiB writes took 1.2x to 1.9x a raw putArchive in such a process, 0.5x to 0.7x
 * in one where no full collection had run. Half again (+50%) kept every process measured at the
 * latter.
 */
const HEAP_GROWING_PERCENT = 50;

/** serverless-offline with every handler in this one process, its App started by the preload. */
function startServer(settings: Settings, logger: Logger): ChildProcess {
  const server = spawn(
    process.execPath,
    [
      // A V8 flag NODE_OPTIONS does not take: given to node itself.
      `--heap-growing-percent=${HEAP_GROWING_PERCENT}`,
      join(PROJECT_ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js'),
      'offline',
      'start',
      '--host',
      settings.HOST,
      '--httpPort',
      String(settings.PORT),
      '--lambdaPort',
      String(settings.LAMBDA_PORT),
      // The framework races each handler against a timer of the function's timeout that it never
      // clears: every request's handler and answer stayed in memory that long (630 s for exec).
      // The handlers' middy stack answers a 504 at the same limit, and clears its timer.
      '--noTimeout',
    ],
    {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...process.env,
        NODE_OPTIONS: [process.env.NODE_OPTIONS, `--import=${API_PROCESS}`]
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
  return server;
}

/**
 * Runs the API (and, when asked, the reconciler beside it) until a signal or until one of them
 * ends: either one ending ends both, so half of the service is not left running. SIGTERM or SIGINT
 * stop it cleanly: no new requests, those in flight finish (up to MATRX_DRAIN_TIMEOUT_SECONDS),
 * clients closed, the reconciler's step in flight finished. Resolves to the exit code.
 */
export async function supervise(
  settings: Settings,
  logger: Logger,
  withReconciler: boolean,
): Promise<number> {
  const server = startServer(settings, logger);
  const children: ChildProcess[] = [server];
  if (withReconciler) {
    const reconciler = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/reconciler/main.js')], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(reconciler);
  }
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
  const first = await Promise.race(children.map(exitCodeOf));
  if (!stopping) for (const child of children) child.kill('SIGTERM');
  const codes = await Promise.all(children.map(exitCodeOf));
  logger.info('stopped', { exit_codes: codes });
  return stopping ? Math.max(...codes) : first;
}

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

/** One line once the API answers, with where its docs are. */
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
