import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Boom } from '@hapi/boom';
import type { Request, ResponseObject, ResponseToolkit, Server } from '@hapi/hapi';
import type { Logger } from '../logger.js';

/**
 * Keeps the error contract (`{"detail": ...}`, JSON) for what serverless-offline's HTTP server
 * (hapi) answers before any handler runs: bad percent-encoding, a cookie header it cannot parse,
 * a body over its limit, a request line or header Node's parser refuses, and its own crashes.
 *
 * serverless-offline creates its hapi server with no way to reach it, so the API process (which
 * preloads this) wraps `start` on the prototype of the framework's own copy of hapi: the server
 * that listens on `port` gets, before it starts,
 * - an `onRequest` extension that keeps a path starting with `//` from crashing the framework
 *   (it parses the raw URL with `new URL(url, base)`, which reads `//` as a host),
 * - an `onPreResponse` extension that turns any error answer not already in the contract (a
 *   hapi Boom, a framework error body) into `{"detail": ...}` with the same status, 5xx generic,
 * - a `clientError` listener on its Node server in place of hapi's, which writes a bare
 *   `400 Bad Request` when Node's HTTP parser refuses a request (an unknown method, a malformed
 *   header): the answer is the same status with a JSON body.
 * Returns the undoing.
 */
export function keepHttpLayerInContract(port: number, logger: Logger): () => void {
  const hapi = frameworkHapi();
  const prototype = Object.getPrototypeOf(hapi.server()) as Server;
  const start = prototype.start;
  prototype.start = function startInContract(this: Server) {
    if (Number(this.settings.port) === port) inContract(this, logger);
    return start.call(this);
  };
  return () => {
    prototype.start = start;
  };
}

/** hapi as serverless-offline loads it: its copy, whatever else node_modules holds. */
function frameworkHapi(): { server(): Server } {
  const require = createRequire(import.meta.resolve('serverless-offline'));
  return require('@hapi/hapi') as { server(): Server };
}

const JSON_TYPE = 'application/json; charset=utf-8';

function inContract(server: Server, logger: Logger): void {
  // Node answers an HTTP/1.1 request with no Host with a bare 400: the extension below says it.
  (server.listener as { requireHostHeader?: boolean }).requireHostHeader = false;
  server.ext('onRequest', (request, h) => {
    const raw = request.raw.req;
    if (raw.httpVersion === '1.1' && !raw.headers.host) {
      return h.response({ detail: 'Missing Host header' }).code(400).takeover();
    }
    if (raw.url?.startsWith('//')) raw.url = raw.url.replace(/^\/+/, '/');
    // hapi would answer a range it cannot serve with a 416 after every extension has run.
    delete request.headers.range;
    return h.continue;
  });
  server.ext('onPreResponse', (request, h) => answerInContract(request, h, logger));
  // A response still being made on a socket whose next bytes Node could not parse goes first.
  const answering = new WeakMap<Socket, ServerResponse>();
  server.listener.on('request', (request: IncomingMessage, response: ServerResponse) => {
    answering.set(request.socket, response);
    response.once('close', () => answering.delete(request.socket));
  });
  const refused = new WeakSet<Socket>();
  server.listener.removeAllListeners('clientError');
  server.listener.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // The parser stays failed: every further chunk the client sends comes back here.
    if (refused.has(socket)) return;
    refused.add(socket);
    logger.warn('request refused by the HTTP parser', { code: error.code });
    const pending = answering.get(socket);
    if (!pending) {
      refuseUnparsable(error, socket);
      return;
    }
    // The body of the request being answered will never come whole (the client closed mid-body):
    // its reader must hear so, or it waits for ever, holding what it holds (an engine upload).
    if (!pending.req.complete) pending.req.destroy(error);
    pending.once('close', () => refuseUnparsable(error, socket));
  });
  // Node drops a CONNECT with no word unless told otherwise; the API tunnels nothing.
  server.listener.on('connect', (_request: IncomingMessage, socket: Socket) => {
    socket.end(closingAnswer(405, 'CONNECT is not supported'));
  });
  // Node answers an Expect header other than 100-continue with a bare 417 unless told otherwise.
  server.listener.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const body = JSON.stringify({ detail: 'Expect: only 100-continue is supported' });
    response.writeHead(417, {
      'content-type': JSON_TYPE,
      'content-length': Buffer.byteLength(body),
    });
    response.end(body);
  });
}

const HEALTH_PATH = '/health';

/** The answer as it is when it already follows the contract, else its status with a detail. */
export function answerInContract(request: Request, h: ResponseToolkit, logger: Logger) {
  const response = request.response as ResponseObject | Boom;
  if ('isBoom' in response && response.isBoom) {
    const status = response.output.statusCode;
    logRefusal(logger, request, status, response);
    const answer = h.response({ detail: detailOf(status, response.message) }).code(status);
    for (const [name, value] of Object.entries(response.output.headers)) {
      if (value !== undefined) answer.header(name, String(value));
    }
    return answer;
  }
  const answer = response as ResponseObject;
  if (answer.statusCode < 400 || hasDetail(answer.source)) return h.continue;
  // A strict /health answers 503 with the health itself: the contract's one error without detail.
  if (request.path === HEALTH_PATH && answer.statusCode === 503) return h.continue;
  logRefusal(logger, request, answer.statusCode, answer.source);
  return h.response({ detail: detailOf(answer.statusCode) }).code(answer.statusCode);
}

/** A 4xx says what hapi said; a 5xx only its kind (the log has the cause). */
export function detailOf(status: number, message?: string): string {
  if (status === 500) return 'Internal server error';
  if (status >= 500 || !message) return STATUS_CODES[status] ?? 'Error';
  return message;
}

/** Whether a body (a string, as the framework passes a handler's) is a JSON object with detail. */
export function hasDetail(source: unknown): boolean {
  const text = Buffer.isBuffer(source) ? source.toString('utf8') : source;
  if (typeof text !== 'string') {
    return typeof source === 'object' && source !== null && 'detail' in source;
  }
  try {
    const body: unknown = JSON.parse(text);
    return typeof body === 'object' && body !== null && 'detail' in body;
  } catch {
    return false;
  }
}

function logRefusal(logger: Logger, request: Request, status: number, cause: unknown) {
  const line = { method: request.method.toUpperCase(), path: request.path.slice(0, 256), status };
  if (status >= 500) logger.error('request failed in the HTTP layer', { ...line, error: cause });
  else logger.warn('request refused by the HTTP layer', line);
}

/**
 * The status Node's parser error deserves, as a complete JSON answer that closes the socket (no
 * body to a HEAD).
 */
export function unparsableAnswer(error: NodeJS.ErrnoException & { rawPacket?: Buffer }): string {
  const isHead = error.rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return closingAnswer(431, 'Request headers too large', isHead);
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return closingAnswer(408, 'Request timed out', isHead);
  return closingAnswer(400, 'Malformed HTTP request', isHead);
}

/** A whole HTTP/1.1 answer with a JSON detail, written straight to a socket, then closed. */
export function closingAnswer(status: number, detail: string, withoutBody = false): string {
  const body = withoutBody ? '' : JSON.stringify({ detail });
  return [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    `content-type: ${JSON_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    '',
    body,
  ].join('\r\n');
}

/** How long a refused client may go on sending (a long URL, say) before its socket is closed. */
const REFUSED_LINGER_MS = 5_000;

function refuseUnparsable(error: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // Half-closed, not destroyed: a client still sending reads the answer instead of a reset.
  socket.end(unparsableAnswer(error));
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}
