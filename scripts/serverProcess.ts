import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { PROJECT_ROOT } from '../lib/projectRoot.js';

export interface RunningServer {
  baseUrl: string;
  process: ChildProcess;
  /** SIGTERM, as an operator's Ctrl-C; resolves once the launcher exited. */
  stop(): Promise<void>;
  /** SIGKILL to the launcher and everything it started, as a crash of the whole host process. */
  kill(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Starts the real API the way `npm start` (or `npm run serve`) does, from dist/ (so build first),
 * on free loopback ports, and resolves once /health answers. Its output goes to `logFile`.
 */
export async function startServer(options: {
  env: Record<string, string>;
  logFile: string;
  readyTimeoutMs?: number;
  /** `start` (development, the default) or `serve` (production). */
  mode?: 'start' | 'serve';
}): Promise<RunningServer> {
  const port = await freePort();
  // Straight to the file: piping through this process would load the caller's event loop.
  const log = openSync(options.logFile, 'w');
  const script = join(PROJECT_ROOT, 'dist', 'scripts', `${options.mode ?? 'start'}.js`);
  const child = spawn(process.execPath, [script], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      MATRX_HOST: '127.0.0.1',
      MATRX_PORT: String(port),
      MATRX_LAMBDA_PORT: String(await freePort()),
      MATRX_EMBEDDED_S3_PORT: String(await freePort()),
      // Each server its own host: a memory registry adopts its own host's containers only.
      MATRX_HOST_ID: `it-host-${port}`,
      // Each server its own cold-tier mounts: they are of its own S3 server.
      MATRX_COLD_ROOT: join(dirname(options.logFile), 'cold'),
      ...options.env,
    },
    stdio: ['ignore', log, log],
    // Its own process group, so kill() reaches serverless-offline and the reconciler too.
    detached: true,
  });
  closeSync(log);
  const baseUrl = `http://127.0.0.1:${port}`;
  const stopWaiting = new AbortController();
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => {
      stopWaiting.abort();
      reject(new Error(`server exited with ${code} before it was ready; see ${options.logFile}`));
    }),
  );
  await Promise.race([
    waitForHealth(baseUrl, options.readyTimeoutMs ?? 300_000, stopWaiting.signal),
    exited,
  ]);
  const signal = (name: NodeJS.Signals, group: boolean) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      if (group && child.pid) process.kill(-child.pid, name);
      else child.kill(name);
    });
  return {
    baseUrl,
    process: child,
    stop: () => signal('SIGTERM', false),
    kill: () => signal('SIGKILL', true),
  };
}

async function waitForHealth(baseUrl: string, timeoutMs: number, stop: AbortSignal) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !stop.aborted) {
    try {
      const response = await fetch(`${baseUrl}/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!stop.aborted) throw new Error(`server at ${baseUrl} not healthy within ${timeoutMs} ms`);
}
