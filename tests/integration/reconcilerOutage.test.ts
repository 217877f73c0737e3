import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startPostgresServer, type PostgresServer } from '../../scripts/postgresServer.js';
import { testDatabase, type TestDatabase } from '../support/postgres.js';
import { passSummaries, startReconciler } from '../support/reconcilerProcess.js';
import { until } from '../support/until.js';

/** A Postgres of this suite's own, so it can be stopped under a running reconciler. */
let postgres: PostgresServer;
let database: TestDatabase;
const hostId = `it-outage-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  postgres = await startPostgresServer();
  database = await testDatabase('outage', { serverUrl: postgres.url });
}, 60_000);

afterAll(async () => {
  await database?.drop().catch(() => undefined);
  await postgres?.destroy();
});

describe('the reconciler process when Postgres goes away', () => {
  it('does nothing while it is down, says why, and converges once it is back; SIGTERM exits 0', async () => {
    const id = `sbx-${randomBytes(6).toString('hex')}`;
    const reconciler = startReconciler({
      MATRX_SANDBOX_STORE: 'postgres',
      MATRX_DATABASE_URL: database.url,
      MATRX_HOST_ID: hostId,
      MATRX_RECONCILE_INTERVAL_SECONDS: '1',
      MATRX_RECONCILE_GRACE_SECONDS: '3',
      MATRX_DATABASE_CONNECT_TIMEOUT_MS: '500',
    });
    try {
      await until('a first pass ran', () => passSummaries(reconciler.entries).length > 0);
      // A running sandbox whose container does not exist, too young to be touched yet.
      await database.pool.query(
        `INSERT INTO sandboxes (sandbox_id, user_id, status, container_id, host_id)
         VALUES ($1, 'it-outage', 'running', 'no-such-container', $2)`,
        [id, hostId],
      );
      await postgres.stop();
      const failedBefore = reconciler.entries.length;
      await until('two passes failed on the registry', () => {
        const failed = reconciler.entries
          .slice(failedBefore)
          .filter(
            (entry) =>
              entry.message === 'reconcile pass did nothing: the registry could not be read',
          );
        return failed.length >= 2;
      });
      // Well past the grace period now, and nothing could have acted.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(reconciler.process.exitCode).toBeNull();
      expect(reconciler.entries.some((entry) => entry.sandbox_id === id)).toBe(false);

      await postgres.start();
      await until('the row is stopped', async () => {
        const { rows } = await database.pool
          .query<{ status: string }>('SELECT status FROM sandboxes WHERE sandbox_id = $1', [id])
          .catch(() => ({ rows: [] as { status: string }[] }));
        return rows[0]?.status === 'stopped';
      });
    } finally {
      reconciler.process.kill('SIGTERM');
    }
    expect(await reconciler.exited).toBe(0);
    expect(reconciler.entries.at(-1)?.message).toBe('reconciler stopped');
  });
});
