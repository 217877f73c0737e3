// Plain ESM on purpose: Jest loads global setup outside its ESM transform, so this imports the
// built server helper from dist/ (`npm test` builds first).
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { startServer } from '../../dist/scripts/serverProcess.js';

/** Starts one real server (serverless-offline, real Docker) for all integration tests. */
export default async function globalSetup() {
  try {
    await new Docker().ping();
  } catch (error) {
    process.stderr.write(
      [
        '',
        '!'.repeat(88),
        `!! Integration tests need a Docker engine, and none is reachable: ${error.message}`,
        '!! Start one (README, "Tests"), or run only the unit tests: npm run test:unit',
        '!'.repeat(88),
        '',
      ].join('\n'),
    );
    throw new Error(`Docker engine not reachable: ${error.message}`);
  }
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
      MATRX_CONTAINER_CPU_LIMIT: '1',
    },
  });
  process.env.MATRX_TEST_BASE_URL = server.baseUrl;
  process.env.MATRX_TEST_API_KEY = apiKey;
  process.env.MATRX_TEST_SERVER_LOG = logFile;
  process.stderr.write(`\nintegration server at ${server.baseUrl}, log ${logFile}\n`);
  globalThis.matrxServer = server;
}
