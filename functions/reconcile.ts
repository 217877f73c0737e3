import middy from '@middy/core';
import { processApp } from '../lib/processApp.js';
import { passSummaryWire } from '../lib/wire.js';

/**
 * The scheduled pass (serverless.yml `schedule`), for deployments that schedule through the
 * framework. Off unless MATRX_SCHEDULED_RECONCILE=true: the framework's schedule reads the same
 * variable, and an invocation that reaches the function anyway (its invoke port) runs nothing.
 */
export const handler = middy().handler(async () => {
  const app = processApp();
  if (!app.settings.SCHEDULED_RECONCILE) {
    return { outcome: 'skipped', reason: 'MATRX_SCHEDULED_RECONCILE is not true' };
  }
  await app.ready();
  return passSummaryWire(await app.reconciler.runPass());
});
