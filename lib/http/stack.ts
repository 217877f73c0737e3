import middy, { type MiddlewareObj } from '@middy/core';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { getApp, type App } from '../app.js';
import { apiKeyAuth } from './apiKeyAuth.js';
import { refuseWhileDraining } from './draining.js';
import { errorMapper } from './errorMapper.js';
import { requestLog, withRequestContext } from './requestLog.js';
import type { HttpResponse } from './responses.js';
import { PUBLIC_ROUTES, type RouteName, type Routes } from './routes.js';
import { parseRequest, type RouteInput } from './validation.js';

type Middleware = MiddlewareObj<APIGatewayProxyEvent, HttpResponse>;

/**
 * The middleware every endpoint shares, in order: the request log (outermost, so it sees the final
 * status), the error mapper, the refusal of new requests while shutting down, then the API key
 * check, so a rejected request never reaches body parsing, validation or a handler.
 */
export function baseStack(options: { requiresKey: boolean } = { requiresKey: true }) {
  const stack = middy<APIGatewayProxyEvent, HttpResponse>()
    .use(requestLog(() => getApp().logger))
    .use(errorMapper())
    .use(refuseWhileDraining());
  if (!options.requiresKey) return stack;
  return stack.use(
    apiKeyAuth(() => ({
      keys: getApp().settings.API_KEY,
      headerName: getApp().settings.API_KEY_HEADER,
    })),
  );
}

/** Parses a JSON body when there is one; an empty body is left for validation to judge. */
function jsonBodyWhenPresent(): Middleware {
  // The option exists at runtime (6.4) but not in the typings; callers often omit content-type.
  const parser = httpJsonBodyParser({ disableContentTypeCheck: true } as never);
  return {
    before: async (request) => {
      const { body } = request.event;
      if (body === null || body === undefined || body.trim() === '') {
        (request.event as { body: unknown }).body = undefined;
        return;
      }
      await parser.before?.(request as never);
    },
  };
}

/** A handler for one route of lib/http/routes.ts: validated input in, response out. */
export function routeHandler<N extends RouteName>(
  name: N,
  handle: (input: RouteInput<Routes[N]>, app: App) => Promise<HttpResponse>,
) {
  const handler = baseStack({ requiresKey: !PUBLIC_ROUTES.has(name) })
    .use(jsonBodyWhenPresent())
    .handler(async (event) => {
      const app = getApp();
      // Health answers whatever state the registry is in: saying so is its job.
      if (name !== 'health') await app.ready();
      const route = app.routes[name];
      return handle(parseRequest(route, event), app);
    });
  return withRequestContext(handler);
}
