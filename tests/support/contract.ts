import { z } from 'zod';
import { loadConfig } from '../../lib/config.js';
import {
  buildRoutes,
  routeLimits,
  SERVICE_ROUTES,
  UNKNOWN_ROUTE_RESPONSES,
  type ResponseSpec,
  type RouteSpec,
} from '../../lib/http/routes.js';

/** Every route the server answers: the API's own and what the catch-all serves. */
export function allRoutes(): RouteSpec[] {
  // The command length limit shapes a request schema only, never a response.
  const routes: RouteSpec[] = Object.values(buildRoutes(routeLimits(loadConfig({}))));
  return [...Object.values(SERVICE_ROUTES), ...routes];
}

const escape = (text: string) => text.replace(/[.*+?^$()|[\]\\]/g, '\\$&');

function matcher(template: string): RegExp {
  const segments = template.split('/').map((seg) => (/^\{.+\}$/.test(seg) ? '[^/]+' : escape(seg)));
  return new RegExp(`^${segments.join('/')}$`);
}

const matchers = allRoutes().map((route) => ({ route, pattern: matcher(route.path) }));

/** The route serving `method` on `pathname` (no query), or undefined: the catch-all's 404. */
export function routeFor(method: string, pathname: string): RouteSpec | undefined {
  return matchers.find(
    ({ route, pattern }) => route.method === method.toLowerCase() && pattern.test(pathname),
  )?.route;
}

export interface ObservedResponse {
  method: string;
  /** As sent; resolved the way the client resolves it, dot segments and all. */
  url: string;
  status: number;
  contentType: string;
  text: string;
}

/** What is wrong with a response by the routes' declarations, or null when nothing is. */
export function contractViolation(response: ObservedResponse): string | null {
  const { method, status } = response;
  const { pathname } = new URL(response.url);
  const route = routeFor(method, pathname);
  const shown = route && route.path !== pathname ? ` (${pathname})` : '';
  const where = route ? `${method} ${route.path}${shown}` : `${method} ${pathname} (no route)`;
  const declared: Record<number, ResponseSpec> = route?.responses ?? UNKNOWN_ROUTE_RESPONSES;
  const spec = declared[status];
  if (!spec) {
    const statuses = Object.keys(declared).join(', ');
    return `${where} answered ${status}, which it does not declare (declared: ${statuses}); body: ${clip(response.text)}`;
  }
  if (status === 204) {
    return response.text === ''
      ? null
      : `${where} answered 204 with a body: ${clip(response.text)}`;
  }
  // Not JSON (the docs page and its files, the OpenAPI document): declared status is enough.
  if (!spec.schema) return null;
  if (!response.contentType.includes('application/json')) {
    return `${where} answered ${status} as ${response.contentType || 'no content type'}, not JSON`;
  }
  let body: unknown;
  try {
    body = JSON.parse(response.text);
  } catch {
    return `${where} answered ${status} with a body that is not JSON: ${clip(response.text)}`;
  }
  const parsed = spec.schema.safeParse(body);
  if (parsed.success) return null;
  return `${where} answered ${status} with a body its schema refuses:\n${z.prettifyError(parsed.error)}\nbody: ${clip(response.text)}`;
}

function clip(text: string): string {
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
