import { configureServerPayloads } from './http/serverPayloads.js';
import { rememberLoadedHandlers } from './http/handlerLoading.js';
import { keepHttpLayerInContract } from './http/httpLayer.js';
import { keepPortOnLoopback } from './loopbackListen.js';
import { processApp } from './processApp.js';

/**
 * Preloaded (`node --import`) into the serverless-offline process by the launcher, so the API's
 * App is built and started with the process: its registry made ready (the memory registry adopts
 * this host's live sandboxes) and, with the memory registry, its reconcile passes running, before
 * and whether or not a request comes. It also keeps the framework's Lambda invoke port, which
 * asks no API key, on 127.0.0.1 (lib/loopbackListen.ts), and what the framework's HTTP server answers
 * before a handler runs in the error contract (lib/http/httpLayer.ts).
 *
 * The framework ends its process within 5 s of a SIGTERM, whatever is in flight, so the launcher
 * asks first, over IPC: this stops taking requests, waits for those in flight (up to the bound it
 * is sent), closes the Docker, Postgres and S3 clients, and answers; only then does the framework
 * get its signal.
 */
interface DrainRequest {
  type: 'drain';
  timeoutMs: number;
}

// Node processes the server may start must not preload this, and start an App, too.
process.env.NODE_OPTIONS = (process.env.NODE_OPTIONS ?? '')
  .split(' ')
  .filter((option) => !option.includes('apiProcess'))
  .join(' ');

const app = processApp();
configureServerPayloads(app.settings.MAX_FILE_BYTES);
keepPortOnLoopback(app.settings.LAMBDA_PORT);
keepHttpLayerInContract(app.settings.PORT, app.logger);
rememberLoadedHandlers();
app.start();

process.on('message', (message: DrainRequest) => {
  if (message?.type !== 'drain') return;
  void (async () => {
    const { logger } = app;
    logger.info('shutting down: no new requests, waiting for those in flight', {
      timeout_ms: message.timeoutMs,
    });
    const { unfinished } = await app.requests.drain(message.timeoutMs);
    if (unfinished > 0) logger.warn('requests still running at the shutdown bound', { unfinished });
    await app.close().catch((error: unknown) => logger.error('closing clients failed', { error }));
    logger.info('clients closed');
    process.send?.({ type: 'drained' });
  })();
});
