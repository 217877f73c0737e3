import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../scripts/serverProcess.js';
import { dockerReachable } from '../support/docker.js';

/** Starts one real server (serverless-offline, real Docker) for all integration tests. */
export default async function globalSetup(): Promise<void> {
  const dockerError = await dockerReachable();
  if (dockerError) {
    const banner = [
      '',
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
      `!! Integration tests need a Docker engine, and none is reachable: ${dockerError}`,
      '!! Start one (see README, "Tests"), or run only the unit tests: npm run test:unit',
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
      '',
    ].join('\n');
    process.stderr.write(banner);
    throw new Error(`Docker engine not reachable: ${dockerError}`);
  }
  const workDir = mkdtempSync(join(tmpdir(), 'matrx-it-'));
  const logFile = join(workDir, 'server.log');
  const server = await startServer({
    logFile,
    env: {
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_EMBEDDED_S3_DIR: join(workDir, 's3'),
      MATRX_SHUTDOWN_TIMEOUT_SECONDS: '2',
      MATRX_CONTAINER_MEMORY_LIMIT: '512m',
      MATRX_CONTAINER_CPU_LIMIT: '1',
    },
  });
  process.env.MATRX_TEST_BASE_URL = server.baseUrl;
  process.env.MATRX_TEST_SERVER_LOG = logFile;
  process.stderr.write(`\nintegration server at ${server.baseUrl}, log ${logFile}\n`);
  (globalThis as { matrxServer?: typeof server }).matrxServer = server;
}
