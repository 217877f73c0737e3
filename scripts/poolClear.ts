import { dockerRuntime } from '../lib/app.js';
import { createLogger } from '../lib/logger.js';
import { clearPool } from '../lib/service/warmPool.js';
import { loadSettingsOrExit, runMain } from '../lib/startup.js';

/**
 * `npm run pool:clear`: removes this host's warm pool containers that no sandbox claimed. A stop
 * of the API leaves them for its next start; run this when the service is stopped for good.
 * Claimed ones are sandboxes, ended as sandboxes are.
 */
runMain(async () => {
  const settings = loadSettingsOrExit();
  const logger = createLogger(settings.LOG_LEVEL, settings.LOG_FORMAT);
  const runtime = dockerRuntime(settings, logger);
  try {
    const removed = await clearPool(runtime, settings.HOST_ID);
    logger.info('warm pool cleared', { host_id: settings.HOST_ID, removed });
    return 0;
  } finally {
    runtime.close();
  }
});
