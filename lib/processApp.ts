import { buildApp, type App } from './app.js';

let app: App | undefined;

/**
 * The process's one App: every handler of the in-process server shares it, its registry and its
 * clients. The launcher preloads lib/apiProcess.ts, which builds and starts it before the server
 * takes its first request.
 */
export function processApp(): App {
  app ??= buildApp();
  return app;
}
