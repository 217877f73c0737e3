import { backgroundLoops, buildApp } from '../lib/app.js';
import { loadSettingsOrExit, startupFailure, runMain } from '../lib/startup.js';

/**
 * `npm run reconciler`: the long-lived process that keeps this host's registry rows and sandbox
 * containers in agreement: one pass at startup, then one every MATRX_RECONCILE_INTERVAL_SECONDS;
 * and, where the engine cannot size a container, measures the sandboxes' disk use every
 * MATRX_HEALTHCHECK_INTERVAL_SECONDS (DiskWatch).
 * `--once` runs one pass and exits (0 when the pass ran, 1 when it could not).
 */
runMain(async () => {
  const settings = loadSettingsOrExit();
  const app = buildApp(settings);
  const { logger } = app;
  if (settings.SANDBOX_STORE !== 'postgres') {
    logger.error(
      'the reconciler needs the shared registry (MATRX_SANDBOX_STORE=postgres); with the memory ' +
        'registry the API runs the passes itself',
    );
    return 2;
  }
  try {
    await app.ready();
  } catch (error) {
    logger.error(...startupFailure(error));
    await app.close();
    return 1;
  }
  if (process.argv.includes('--once')) {
    const summary = await app.reconciler.runPass();
    await app.close();
    return summary.outcome === 'done' ? 0 : 1;
  }
  const loops = backgroundLoops(app, settings, logger, true);
  logger.info('reconciler started', {
    host_id: settings.HOST_ID,
    interval_seconds: settings.RECONCILE_INTERVAL_SECONDS,
    disk_check_interval_seconds: settings.HEALTHCHECK_INTERVAL_SECONDS,
  });
  loops.forEach((loop) => loop.start());
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  logger.info('reconciler stopping: the step in flight finishes first', { signal });
  await Promise.all(loops.map((loop) => loop.stop()));
  await app.close();
  logger.info('reconciler stopped');
  return 0;
});
