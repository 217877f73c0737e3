import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { POSTGRES, UnavailableError } from '../../errors.js';
import { PROJECT_ROOT } from '../../projectRoot.js';
import { toServiceError } from './pgErrors.js';

export const MIGRATIONS_DIR = join(PROJECT_ROOT, 'migrations');
const MIGRATION_FILE = /^\d{3}_[a-z0-9_]+\.sql$/;
/** Arbitrary, fixed: the advisory lock key that makes concurrent `npm run migrate` runs queue. */
const MIGRATE_LOCK_KEY = 7_275_342_001;

export function migrationFiles(dir = MIGRATIONS_DIR): string[] {
  return readdirSync(dir)
    .filter((name) => MIGRATION_FILE.test(name))
    .sort();
}

async function appliedVersions(client: pg.ClientBase): Promise<Set<string>> {
  const exists = await client.query<{ table: string | null }>(
    "SELECT to_regclass('schema_migrations')::text AS table",
  );
  if (!exists.rows[0]?.table) return new Set();
  const { rows } = await client.query<{ version: string }>('SELECT version FROM schema_migrations');
  return new Set(rows.map((row) => row.version));
}

/** The migration files not yet applied to the database, in order. */
export async function pendingMigrations(client: pg.ClientBase, dir = MIGRATIONS_DIR) {
  const applied = await appliedVersions(client);
  return migrationFiles(dir).filter((file) => !applied.has(file));
}

/** Refuses to run on an outdated schema: the service never migrates by itself. */
export async function assertSchemaCurrent(pool: pg.Pool, dir = MIGRATIONS_DIR): Promise<void> {
  let pending: string[];
  try {
    const client = await pool.connect();
    try {
      pending = await pendingMigrations(client, dir);
    } finally {
      client.release();
    }
  } catch (error) {
    throw toServiceError(error, 'read the schema version');
  }
  if (pending.length > 0) {
    throw new UnavailableError(
      POSTGRES,
      `${POSTGRES} schema is outdated (pending: ${pending.join(', ')}): run npm run migrate`,
    );
  }
}

/** Applies pending files in order, each in its own transaction; safe to run twice, or at once. */
export async function migrate(pool: pg.Pool, dir = MIGRATIONS_DIR): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATE_LOCK_KEY]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version TEXT PRIMARY KEY,
         applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
       )`,
    );
    const pending = await pendingMigrations(client, dir);
    for (const file of pending) {
      await client.query('BEGIN');
      try {
        await client.query(readFileSync(join(dir, file), 'utf8'));
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [file]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
      }
    }
    return pending;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATE_LOCK_KEY]).catch(() => undefined);
    client.release();
  }
}
