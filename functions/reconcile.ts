import middy from '@middy/core';
import { processApp } from '../lib/processApp.js';
import { passSummaryWire } from '../lib/wire.js';

/** The scheduled pass (serverless.yml `schedule`), for deployments that schedule through the framework. */
export const handler = middy().handler(async () => {
  const app = processApp();
  await app.ready();
  return passSummaryWire(await app.reconciler.runPass());
});
