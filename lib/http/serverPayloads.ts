import { createRequire } from 'node:module';

/**
 * What serverless-offline's HTTP server (hapi) does with request bodies, set from the preload
 * (lib/apiProcess.ts) before the framework builds its routes, since it has no option for it:
 *
 * - It caps every body at 10 MiB; a route that takes raw bytes (a file, an archive) takes up to
 *   MATRX_MAX_FILE_BYTES instead. Hapi refuses a larger Content-Length before it reads a byte.
 * - It reads a body as text (UTF-8, which mangles bytes) unless its content type is binary: those
 *   routes' bodies are read as bytes whatever the caller said, and reach the handler in base64.
 * - Its own refusals (413, 400) become `{"detail": ...}` like every other answer.
 */
interface HapiRoute {
  method: string;
  path: string;
  options?: { payload?: { maxBytes?: number; timeout?: number | false } };
}

interface HapiRequest {
  route: { method: string; path: string };
  headers: Record<string, string | undefined>;
  response: { isBoom?: boolean; output?: { statusCode: number; payload: { message?: string } } };
}

interface HapiToolkit {
  continue: symbol;
  response(body: unknown): { code(status: number): unknown };
}

interface HapiServer {
  route(routes: HapiRoute | HapiRoute[]): void;
  ext(event: string, method: (request: HapiRequest, h: HapiToolkit) => unknown): void;
}

const RAW_BODY_ROUTES = new Set([
  'put /sandboxes/{sandbox_id}/files',
  'put /sandboxes/{sandbox_id}/files/archive',
]);

const isRawBodyRoute = (method: string, path: string) =>
  RAW_BODY_ROUTES.has(`${method.toLowerCase()} ${path}`);

export function configureServerPayloads(maxFileBytes: number): void {
  const require = createRequire(import.meta.url);
  // Hapi's typings are not a dependency of ours: the few members used are declared above.
  const hapi = require('@hapi/hapi') as { server: () => HapiServer };
  // `Server` is a factory: the class is reached through an instance, never started.
  const prototype = Object.getPrototypeOf(hapi.server()) as HapiServer;
  const route = prototype.route;
  const configured = new WeakSet<HapiServer>();
  prototype.route = function (this: HapiServer, routes: HapiRoute | HapiRoute[]) {
    if (!configured.has(this)) {
      configured.add(this);
      addHooks(this);
    }
    for (const one of Array.isArray(routes) ? routes : [routes]) {
      if (isRawBodyRoute(one.method, one.path) && one.options?.payload) {
        one.options.payload.maxBytes = maxFileBytes;
        // Hapi's 10 s for the whole body would cut off a slow client's large file.
        one.options.payload.timeout = false;
      }
    }
    route.call(this, routes);
  };

  function addHooks(server: HapiServer): void {
    server.ext('onPreAuth', (request, h) => {
      if (isRawBodyRoute(request.route.method, request.route.path)) {
        request.headers['content-type'] = 'application/octet-stream';
      }
      return h.continue;
    });
    server.ext('onPreResponse', (request, h) => {
      const { response } = request;
      const status = response.output?.statusCode;
      if (!response.isBoom || (status !== 413 && status !== 400)) return h.continue;
      const detail =
        status === 413
          ? `The body is over the limit of ${
              isRawBodyRoute(request.route.method, request.route.path)
                ? `${maxFileBytes} bytes (MATRX_MAX_FILE_BYTES)`
                : '10 MiB'
            }`
          : (response.output?.payload.message ?? 'Bad Request');
      return h.response({ detail }).code(status);
    });
  }
}
