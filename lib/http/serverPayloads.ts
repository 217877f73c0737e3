import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { STREAMED_BODY_HEADER, claimBody, lendBody } from './streamedBodies.js';

/**
 * What serverless-offline's HTTP server (hapi) does with request bodies, set from the preload
 * (lib/apiProcess.ts) before the framework builds its routes, since it has no option for it:
 *
 * - It caps every body at 10 MiB; a route that takes raw bytes (a file, an archive) takes up to
 *   MATRX_MAX_FILE_BYTES instead. Hapi refuses a larger Content-Length before it reads a byte.
 * - A raw route's body is not read by the server: with a Content-Length it is lent to the handler
 *   as the stream it is (lib/http/streamedBodies.ts), so a large file goes to the sandbox as it
 *   comes, never whole in memory nor as base64; a chunked one is read here, up to the cap, and
 *   goes the Lambda way (bytes, whatever content type the caller gave, in base64).
 * - A stream a handler lends for its answer is sent as it comes.
 * - Its own refusals (413, 400) become `{"detail": ...}` like every other answer.
 */
interface HapiRoute {
  method: string;
  path: string;
  options?: {
    payload?: { maxBytes?: number; timeout?: number | false; output?: 'data' | 'stream' };
  };
}

interface HapiResponse {
  isBoom?: boolean;
  statusCode?: number;
  headers?: Record<string, string | string[] | number | undefined>;
  output?: { statusCode: number; payload: { message?: string } };
}

interface HapiRequest {
  route: { method: string; path: string };
  headers: Record<string, string | undefined>;
  raw: { req: Readable & { rawHeaders: string[] } };
  payload: unknown;
  app: { lentBody?: string; overLimit?: boolean };
  response: HapiResponse;
}

interface HapiAnswer {
  code(status: number): HapiAnswer;
  header(name: string, value: string): HapiAnswer;
  takeover(): HapiAnswer;
}

interface HapiToolkit {
  continue: symbol;
  response(body: unknown): HapiAnswer;
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
        one.options.payload.output = 'stream';
        // Hapi's 10 s for the whole body would cut off a slow client's large file.
        one.options.payload.timeout = false;
      }
    }
    route.call(this, routes);
  };

  function addHooks(server: HapiServer): void {
    server.ext('onRequest', (request, h) => {
      // Only the server lends bodies: a caller naming one would take another request's.
      if (request.headers[STREAMED_BODY_HEADER] !== undefined) {
        request.headers[STREAMED_BODY_HEADER] = undefined;
        const raw = request.raw.req.rawHeaders;
        for (let at = raw.length - 2; at >= 0; at -= 2) {
          if (raw[at]?.toLowerCase() === STREAMED_BODY_HEADER) raw.splice(at, 2);
        }
      }
      return h.continue;
    });
    server.ext('onPreAuth', (request, h) => {
      if (isRawBodyRoute(request.route.method, request.route.path)) {
        request.headers['content-type'] = 'application/octet-stream';
      }
      return h.continue;
    });
    server.ext('onPreHandler', async (request, h) => {
      if (!isRawBodyRoute(request.route.method, request.route.path)) return h.continue;
      const body = request.payload as Readable;
      const length = Number(request.headers['content-length'] ?? Number.NaN);
      if (Number.isSafeInteger(length) && length > 0) {
        const id = lendBody({ stream: body, length });
        request.app.lentBody = id;
        request.headers[STREAMED_BODY_HEADER] = id;
        request.raw.req.rawHeaders.push(STREAMED_BODY_HEADER, id);
        request.payload = Buffer.alloc(0);
        return h.continue;
      }
      const whole = await readUpTo(body, maxFileBytes);
      if (!whole) {
        // The rest is not read (it may never end): the connection closes after the answer.
        request.app.overLimit = true;
        return h
          .response({ detail: tooLarge(request) })
          .code(413)
          .takeover();
      }
      request.payload = whole;
      return h.continue;
    });
    server.ext('onPreResponse', async (request, h) => {
      if (isRawBodyRoute(request.route.method, request.route.path)) {
        if (request.app.lentBody) claimBody(request.app.lentBody);
        // A body the handler never read (refused before it: no key, a bad path) is read to its
        // end before the answer, as hapi does for a body it refuses: a client still sending it
        // gets the answer, and the connection can carry its next request. Its length is bounded.
        if (!request.app.overLimit) await readToEnd(request.raw.req);
      }
      const { response } = request;
      const lent = response.headers?.[STREAMED_BODY_HEADER];
      if (!response.isBoom && typeof lent === 'string') return streamed(response, lent, h);
      const status = response.output?.statusCode;
      if (!response.isBoom || (status !== 413 && status !== 400)) return h.continue;
      const detail =
        status === 413 ? tooLarge(request) : (response.output?.payload.message ?? 'Bad Request');
      return h.response({ detail }).code(status);
    });
  }

  function tooLarge(request: HapiRequest): string {
    const limit = isRawBodyRoute(request.route.method, request.route.path)
      ? `${maxFileBytes} bytes (MATRX_MAX_FILE_BYTES)`
      : '10 MiB';
    return `The body is over the limit of ${limit}`;
  }
}

/** A handler's answer whose body it lent: the same status and headers, the stream as the body. */
function streamed(response: HapiResponse, id: string, h: HapiToolkit): unknown {
  const body = claimBody(id);
  if (!body) throw new Error(`no body lent as ${id}`);
  const answer = h.response(body.stream).code(response.statusCode ?? 200);
  for (const [name, value] of Object.entries(response.headers ?? {})) {
    if (name.toLowerCase() !== STREAMED_BODY_HEADER && value !== undefined) {
      answer.header(name, String(value));
    }
  }
  return answer;
}

/** Reads and drops what is left of a body; at once for one ended or failed. */
function readToEnd(body: Readable): Promise<void> {
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    body.once('end', resolve);
    body.once('close', resolve);
    body.once('error', () => resolve());
    body.resume();
  });
}

/**
 * The whole of a body, or null past `maxBytes`. The rest is left unread, not destroyed: the socket
 * still carries the answer.
 */
function readUpTo(body: Readable, maxBytes: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      body.off('data', onData);
      body.off('end', onEnd);
      body.pause();
      resolve(null);
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', reject);
  });
}
