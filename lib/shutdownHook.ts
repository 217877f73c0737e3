import { closeApp, getApp } from './app.js';
import { drain } from './http/draining.js';

/**
 * Preloaded (`node --import`) into the serverless-offline process by the launcher. The framework
 * ends its process within 5 s of a SIGTERM, whatever is in flight, so the launcher asks first, over
 * IPC: this stops taking requests, waits for those in flight (up to the bound it is sent), closes
 * the Docker, Postgres and S3 clients, and answers; only then does the framework get its signal.
 */
interface DrainRequest {
  type: 'drain';
  timeoutMs: number;
}

process.on('message', (message: DrainRequest) => {
  if (message?.type !== 'drain') return;
  void (async () => {
    const { logger } = getApp();
    logger.info('shutting down: no new requests, waiting for those in flight', {
      timeout_ms: message.timeoutMs,
    });
    const { unfinished } = await drain(message.timeoutMs);
    if (unfinished > 0) logger.warn('requests still running at the shutdown bound', { unfinished });
    await closeApp().catch((error: unknown) => logger.error('closing clients failed', { error }));
    logger.info('clients closed');
    process.send?.({ type: 'drained' });
  })();
});
