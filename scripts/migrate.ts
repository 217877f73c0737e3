import { migrate, migrationFiles } from '../lib/adapters/postgres/migrations.js';
import { createPool } from '../lib/adapters/postgres/postgresSandboxStore.js';
import { createLogger } from '../lib/logger.js';
import { loadSettingsOrExit, runMain } from '../lib/startup.js';

/** `npm run migrate`: applies the pending files of migrations/ to MATRX_DATABASE_URL, in order. */
runMain(async () => {
  const settings = loadSettingsOrExit();
  const logger = createLogger(settings.LOG_LEVEL, settings.LOG_FORMAT);
  if (!settings.DATABASE_URL) {
    logger.error('MATRX_DATABASE_URL is not set: there is no database to migrate');
    return 2;
  }
  const pool = createPool(
    {
      url: settings.DATABASE_URL,
      maxConnections: 1,
      connectTimeoutMs: settings.DATABASE_CONNECT_TIMEOUT_MS,
    },
    logger,
  );
  try {
    const applied = await migrate(pool);
    logger.info(applied.length ? 'migrations applied' : 'schema already current', {
      applied,
      known: migrationFiles().length,
    });
    return 0;
  } catch (error) {
    logger.error('migration failed', { error });
    return 1;
  } finally {
    await pool.end();
  }
});
