import { createLogger } from '../lib/logger.js';
import { loadSettingsOrExit } from '../lib/startup.js';
import { preflight } from './launch/preflight.js';
import { supervise } from './launch/supervisor.js';

export type LaunchMode = 'development' | 'production';

/**
 * `npm start` (development) and `npm run serve` (production): checks the settings and what the
 * service needs (scripts/launch/preflight.ts), then serves the API with serverless-offline, all
 * handlers in one process so they share one registry (scripts/launch/supervisor.ts). With the
 * memory registry the API runs the reconcile passes itself; with Postgres, in development, the
 * reconciler runs beside it (in production it is a service of its own). In development a missing
 * sandbox image is built and an embedded S3 started when none is configured.
 */
export async function launch(mode: LaunchMode): Promise<number> {
  const development = mode === 'development';
  const configured = loadSettingsOrExit();
  const logger = createLogger(configured.LOG_LEVEL, configured.LOG_FORMAT);
  const prepared = await preflight(configured, logger, development);
  if (!prepared) return 1;
  const { settings, embeddedS3 } = prepared;
  try {
    return await supervise(settings, logger, development && settings.SANDBOX_STORE === 'postgres');
  } finally {
    await embeddedS3?.close();
  }
}
