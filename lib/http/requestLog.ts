import { randomUUID } from 'node:crypto';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { requestContext, type Logger } from '../logger.js';
import type { RequestTracker } from './draining.js';
import { headerValue } from './headers.js';
import type { HttpResponse } from './responses.js';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const REQUEST_ID_HEADER = 'x-request-id';

/** The caller's X-Request-Id when it is a sane one, else a new id. */
export function requestIdOf(event: APIGatewayProxyEvent): string {
  const given = headerValue(event, REQUEST_ID_HEADER)?.trim();
  return given && SANE_REQUEST_ID.test(given) ? given : randomUUID();
}

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<HttpResponse>;

/**
 * Runs a handler with its request id in scope, so every line logged meanwhile carries it, and
 * counted in flight, so a clean shutdown can wait for it.
 */
export function withRequestContext(handler: Handler, requests: RequestTracker): Handler {
  return (event, context) =>
    requests.track(() =>
      requestContext.run({ requestId: requestIdOf(event) }, () => handler(event, context)),
    );
}

/**
 * One line per request: method, path, route, status, duration, request id, sandbox id. Runs
 * outermost, so it sees the status the error mapper chose. Never logs bodies or headers.
 */
export function requestLog(logger: Logger): MiddlewareObj<APIGatewayProxyEvent, HttpResponse> {
  const started = new WeakMap<object, number>();
  const finish = (request: {
    event: APIGatewayProxyEvent;
    response: HttpResponse | null | undefined;
    error: unknown;
  }) => {
    const { event } = request;
    const requestId = requestContext.getStore()?.requestId ?? requestIdOf(event);
    const response = request.response ?? { statusCode: 500, headers: {}, body: '' };
    response.headers = { ...response.headers, 'x-request-id': requestId };
    request.response = response;
    const status = response.statusCode;
    const sandboxId = event.pathParameters?.sandbox_id;
    const line = {
      method: event.httpMethod,
      path: event.path,
      route: event.resource,
      status,
      duration_ms:
        Math.round((performance.now() - (started.get(event) ?? performance.now())) * 10) / 10,
      request_id: requestId,
      ...(sandboxId !== undefined && { sandbox_id: sandboxId.slice(0, 64) }),
    };
    if (status >= 500) logger.error('request failed', { ...line, error: request.error });
    else if (status >= 400) logger.warn('request rejected', line);
    // Monitors poll /health every few seconds: its successes are detail.
    else if (event.resource === '/health') logger.debug('request', line);
    else logger.info('request', line);
  };
  return {
    before: async (request) => {
      started.set(request.event, performance.now());
    },
    after: async (request) => finish(request),
    onError: async (request) => finish(request),
  };
}
