import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startPostgresServer, type PostgresServer } from '../../scripts/postgresServer.js';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { sandboxContainers } from '../support/docker.js';
import { testDatabase, type TestDatabase } from '../support/postgres.js';
import { reconcileOnce } from '../support/reconcilerProcess.js';
import { ownServer, type WireSandbox } from '../support/sandboxes.js';

/**
 * Postgres restarted while sandboxes are being created: a Postgres of this suite's own, stopped
 * under creates in flight and started again. Every answer meanwhile is a 201 or a 503 naming
 * Postgres within ANSWER_BOUND_MS; after two reconcile passes every container has a live row
 * and every live row a running container.
 */
const ANSWER_BOUND_MS = 30_000;

let postgres: PostgresServer;
let database: TestDatabase;
let server: RunningServer;
const hostId = `it-pgrestart-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  postgres = await startPostgresServer();
  database = await testDatabase('pgrestart', { serverUrl: postgres.url });
  const workDir = mkdtempSync(join(tmpdir(), 'matrx-pgrestart-'));
  server = await startServer({
    logFile: join(workDir, 'server.log'),
    env: {
      MATRX_SANDBOX_STORE: 'postgres',
      MATRX_DATABASE_URL: database.url,
      MATRX_DATABASE_CONNECT_TIMEOUT_MS: '1000',
      MATRX_HOST_ID: hostId,
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_CONTAINER_MEMORY_LIMIT: '512m',
      MATRX_CONTAINER_CPU_LIMIT: '1',
      MATRX_SHUTDOWN_TIMEOUT_SECONDS: '1',
      MATRX_EMBEDDED_S3_DIR: join(workDir, 's3'),
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await database?.drop().catch(() => undefined);
  await postgres?.destroy();
});

const { call } = ownServer(() => server.baseUrl);

async function timedCall(method: string, path: string, json?: unknown) {
  const started = Date.now();
  const answer = await call<WireSandbox>(method, path, json);
  return { ...answer, ms: Date.now() - started };
}

describe('Postgres restarted during creates', () => {
  it('creates answer 201 or a 503 naming Postgres; two passes leave no orphan', async () => {
    const user = testUser('pgrestart');
    const creates = Array.from({ length: 3 }, () =>
      timedCall('POST', '/sandboxes', { user_id: user }),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await postgres.stop();
    const during = await Promise.all([
      ...creates,
      timedCall('POST', '/sandboxes', { user_id: user }),
      timedCall('GET', `/sandboxes?user_id=${user}`),
    ]);
    for (const answer of during) {
      expect(answer.ms).toBeLessThan(ANSWER_BOUND_MS);
      if (answer.status !== 201) {
        expect([answer.status, answer.body]).toEqual([
          503,
          { detail: expect.stringContaining('Postgres') },
        ]);
      }
    }
    expect(during.slice(3).map((answer) => answer.status)).toEqual([503, 503]);

    await postgres.start();
    const env = {
      MATRX_SANDBOX_STORE: 'postgres',
      MATRX_DATABASE_URL: database.url,
      MATRX_HOST_ID: hostId,
      MATRX_RECONCILE_GRACE_SECONDS: '0',
      MATRX_RECONCILE_STUCK_SECONDS: '0',
    };
    for (let pass = 0; pass < 2; pass += 1) expect((await reconcileOnce(env)).code).toBe(0);

    const { rows } = await database.pool.query<{ sandbox_id: string; status: string }>(
      'SELECT sandbox_id, status FROM sandboxes WHERE user_id = $1',
      [user],
    );
    const live = rows.filter((row) => ['ready', 'running'].includes(row.status));
    const containers = await sandboxContainers(user);
    expect(containers.map((c) => c.Labels['matrx.sandbox_id']).sort()).toEqual(
      live.map((row) => row.sandbox_id).sort(),
    );
    expect(containers.every((c) => c.State === 'running')).toBe(true);
    for (const row of live) {
      expect((await call('DELETE', `/sandboxes/${row.sandbox_id}`)).status).toBe(204);
    }
    expect(await sandboxContainers(user)).toEqual([]);
  });
});
