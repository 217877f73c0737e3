import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../lib/adapters/postgres/migrations.js';
import { createDatabase } from '../../scripts/postgresServer.js';

/** The server globalSetup provided: MATRX_TEST_DATABASE_URL, or the throwaway one it started. */
export function testServerUrl(): string {
  const url = process.env.MATRX_TEST_DATABASE_URL;
  if (!url)
    throw new Error('MATRX_TEST_DATABASE_URL is not set: the integration globalSetup did not run');
  return url;
}

export interface TestDatabase {
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** A database of its own for one suite, migrated unless told otherwise; drop() removes it. */
export async function testDatabase(
  name: string,
  options: { migrated?: boolean; serverUrl?: string } = {},
): Promise<TestDatabase> {
  const database = await createDatabase(
    options.serverUrl ?? testServerUrl(),
    `matrx_t_${name}_${randomBytes(4).toString('hex')}`,
  );
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pool.on('error', () => undefined);
  if (options.migrated !== false) await migrate(pool);
  return {
    url: database.url,
    pool,
    drop: async () => {
      await pool.end();
      await database.drop();
    },
  };
}
