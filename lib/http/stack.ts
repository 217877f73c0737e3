import middy, { type MiddlewareObj } from '@middy/core';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { App } from '../app.js';
import type { Bytes } from '../domain/bytes.js';
import type { Logger } from '../logger.js';
import { processApp } from '../processApp.js';
import { apiKeyAuth, type ApiKeySettings } from './apiKeyAuth.js';
import { refuseWhileDraining, type RequestTracker } from './draining.js';
import { errorMapper } from './errorMapper.js';
import { requestLog, withRequestContext } from './requestLog.js';
import { requestBytes, type HttpResponse } from './responses.js';
import { PUBLIC_ROUTES, type RouteName, type Routes, type RouteSpec } from './routes.js';
import { parseRequest, type RouteInput } from './validation.js';

type Middleware = MiddlewareObj<APIGatewayProxyEvent, HttpResponse>;
type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<HttpResponse>;

/** What the shared middleware need, passed in: the process's logger, keys and request count. */
export interface StackDependencies {
  logger: Logger;
  apiKey: ApiKeySettings;
  requests: RequestTracker;
}

export function stackDependencies(app: App): StackDependencies {
  const { settings } = app;
  return {
    logger: app.logger,
    apiKey: {
      keys: settings.API_KEY,
      headerName: settings.API_KEY_HEADER,
      publicDocs: settings.PUBLIC_DOCS,
    },
    requests: app.requests,
  };
}

/**
 * The middleware every endpoint shares, in order: the request log (outermost, so it sees the final
 * status), the error mapper, the refusal of new requests while shutting down, then the API key
 * check, so a rejected request never reaches body parsing, validation or a handler.
 */
export function baseStack(deps: StackDependencies, options = { requiresKey: true }) {
  const stack = middy<APIGatewayProxyEvent, HttpResponse>()
    .use(requestLog(deps.logger))
    .use(errorMapper())
    .use(refuseWhileDraining(deps.requests));
  return options.requiresKey ? stack.use(apiKeyAuth(deps.apiKey)) : stack;
}

/** A stack's handler, run with its request id in scope and counted in flight. */
export function served(deps: StackDependencies, handler: Handler): Handler {
  return withRequestContext(handler, deps.requests);
}

/**
 * Parses a JSON body when there is one; an empty body is left for validation to judge. The
 * framework hands over a body it took for JSON and found falsy (`false`, `0`) already parsed:
 * that value is the body.
 */
export function jsonBodyWhenPresent(): Middleware {
  // The option exists at runtime (6.4) but not in the typings; callers often omit content-type.
  const parser = httpJsonBodyParser({ disableContentTypeCheck: true } as never);
  return {
    before: async (request) => {
      const body: unknown = request.event.body;
      if (typeof body !== 'string' && body !== null && body !== undefined) return;
      if (typeof body !== 'string' || body.trim() === '') {
        (request.event as { body: unknown }).body = undefined;
        return;
      }
      await parser.before?.(request as never);
    },
  };
}

/**
 * A handler for one route of lib/http/routes.ts: validated input in, response out. A route with a
 * raw body gets its bytes as they came, never parsed.
 */
export function routeHandler<N extends RouteName>(
  name: N,
  handle: (input: RouteInput<Routes[N]>, app: App, rawBody: Bytes) => Promise<HttpResponse>,
  app: App = processApp(),
): Handler {
  const deps = stackDependencies(app);
  const route: RouteSpec = app.routes[name];
  const stack = baseStack(deps, { requiresKey: !PUBLIC_ROUTES.has(name) });
  if (!route.rawBody) stack.use(jsonBodyWhenPresent());
  const handler = stack.handler(async (event) => {
    // Health answers whatever state the registry is in: saying so is its job.
    if (name !== 'health') await app.ready();
    const rawBody = route.rawBody ? requestBytes(event) : Buffer.alloc(0);
    return handle(parseRequest(route, event) as RouteInput<Routes[N]>, app, rawBody);
  });
  return served(deps, handler);
}
