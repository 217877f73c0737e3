// Plain ESM on purpose: Jest loads global setup outside its ESM transform, so this imports the
// built server helper from dist/ (`npm test` builds first).
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { startPostgresServer } from '../../dist/scripts/postgresServer.js';
import { startServer } from '../../dist/scripts/serverProcess.js';

function shout(lines) {
  process.stderr.write(
    ['', '!'.repeat(88), ...lines.map((l) => `!! ${l}`), '!'.repeat(88), ''].join('\n'),
  );
}

/**
 * A real Postgres for the suites that need one: MATRX_TEST_DATABASE_URL when it is set (CI sets
 * it), otherwise a throwaway server of the machine's own Postgres binaries.
 */
async function providePostgres() {
  if (process.env.MATRX_TEST_DATABASE_URL) return;
  try {
    const server = await startPostgresServer();
    process.env.MATRX_TEST_DATABASE_URL = server.url;
    globalThis.matrxPostgres = server;
    process.stderr.write(`\nthrowaway Postgres at ${server.url}\n`);
  } catch (error) {
    shout([
      `Integration tests need Postgres, and none could be started: ${error.message}`,
      'Set MATRX_TEST_DATABASE_URL to a server the tests may create databases on (CONTRIBUTING.md).',
    ]);
    throw error;
  }
}

/** Starts one real server (serverless-offline, real Docker) for all integration tests. */
export default async function globalSetup() {
  try {
    await new Docker().ping();
  } catch (error) {
    shout([
      `Integration tests need a Docker engine, and none is reachable: ${error.message}`,
      'Start one (CONTRIBUTING.md), or run only the unit tests: npm run test:unit',
    ]);
    throw new Error(`Docker engine not reachable: ${error.message}`);
  }
  await providePostgres();
  // Inherited by the test workers: every user id of this run carries it (tests/support/api.ts).
  process.env.MATRX_TEST_RUN = randomBytes(3).toString('hex');
  const workDir = mkdtempSync(join(tmpdir(), 'matrx-it-'));
  const logFile = join(workDir, 'server.log');
  // The whole suite runs with a key set, as production does.
  const apiKey = randomBytes(24).toString('base64');
  const server = await startServer({
    logFile,
    env: {
      MATRX_API_KEY: `${randomBytes(16).toString('hex')},${apiKey}`,
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_EMBEDDED_S3_DIR: join(workDir, 's3'),
      MATRX_SHUTDOWN_TIMEOUT_SECONDS: '2',
      MATRX_CONTAINER_MEMORY_LIMIT: '512m',
      // Small, so that a test can pass it: 4 segments of 32 KiB per stream.
      MATRX_PROCESS_OUTPUT_BYTES: String(128 * 1024),
      MATRX_CONTAINER_CPU_LIMIT: '1',
      // Small, so that a test can pass it cheaply; a test's multi-MiB files stay under it.
      MATRX_MAX_FILE_BYTES: String(8 * 1024 * 1024),
      // A second template, on the one image every run has: what is checked is the choosing.
      MATRX_SANDBOX_TEMPLATES: 'second=matrx-sandbox:latest',
    },
  });
  process.env.MATRX_TEST_BASE_URL = server.baseUrl;
  process.env.MATRX_TEST_API_KEY = apiKey;
  process.env.MATRX_TEST_SERVER_LOG = logFile;
  process.stderr.write(`\nintegration server at ${server.baseUrl}, log ${logFile}\n`);
  globalThis.matrxServer = server;
}
