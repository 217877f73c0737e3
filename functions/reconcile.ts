import middy from '@middy/core';
import { getApp } from '../lib/app.js';

/** The scheduled pass (serverless.yml `schedule`), for deployments that schedule through the framework. */
export const handler = middy().handler(async () => {
  const app = getApp();
  await app.ready();
  return app.reconciler.runPass();
});
