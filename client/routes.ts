import type { z } from 'zod';
import type { RouteName, Routes } from '../lib/http/routes.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface ClientRoute {
  method: HttpMethod;
  /** As in lib/http/routes.ts, `{name}` for each path parameter. */
  path: string;
  /** The status of success. */
  ok: number;
  /** Safe to send again after a 503 or a broken connection: the same call twice does no more. */
  idempotent: boolean;
}

/**
 * Every route of the API, as the client calls it. `satisfies Record<RouteName, ...>` fails to
 * compile when a route is added or removed; tests/unit/clientRoutes.test.ts checks method, path
 * and success status against buildRoutes().
 */
export const ROUTES = {
  health: { method: 'GET', path: '/health', ok: 200, idempotent: true },
  createSandbox: { method: 'POST', path: '/sandboxes', ok: 201, idempotent: false },
  listSandboxes: { method: 'GET', path: '/sandboxes', ok: 200, idempotent: true },
  getSandbox: { method: 'GET', path: '/sandboxes/{sandbox_id}', ok: 200, idempotent: true },
  execCommand: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/exec',
    ok: 200,
    idempotent: false,
  },
  startProcess: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/processes',
    ok: 201,
    idempotent: false,
  },
  listProcesses: {
    method: 'GET',
    path: '/sandboxes/{sandbox_id}/processes',
    ok: 200,
    idempotent: true,
  },
  getProcess: {
    method: 'GET',
    path: '/sandboxes/{sandbox_id}/processes/{process_id}',
    ok: 200,
    idempotent: true,
  },
  readProcessOutput: {
    method: 'GET',
    path: '/sandboxes/{sandbox_id}/processes/{process_id}/output',
    ok: 200,
    idempotent: true,
  },
  writeProcessStdin: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/processes/{process_id}/stdin',
    ok: 200,
    idempotent: false,
  },
  killProcess: {
    method: 'DELETE',
    path: '/sandboxes/{sandbox_id}/processes/{process_id}',
    ok: 200,
    idempotent: true,
  },
  readFile: { method: 'GET', path: '/sandboxes/{sandbox_id}/files', ok: 200, idempotent: true },
  writeFile: { method: 'PUT', path: '/sandboxes/{sandbox_id}/files', ok: 200, idempotent: true },
  listFiles: {
    method: 'GET',
    path: '/sandboxes/{sandbox_id}/files/list',
    ok: 200,
    idempotent: true,
  },
  statFile: {
    method: 'GET',
    path: '/sandboxes/{sandbox_id}/files/stat',
    ok: 200,
    idempotent: true,
  },
  deleteFile: {
    method: 'DELETE',
    path: '/sandboxes/{sandbox_id}/files',
    ok: 204,
    idempotent: true,
  },
  makeDir: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/files/mkdir',
    ok: 200,
    idempotent: true,
  },
  moveFile: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/files/move',
    ok: 200,
    idempotent: false,
  },
  editFile: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/files/edit',
    ok: 200,
    idempotent: false,
  },
  searchFiles: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/files/search',
    ok: 200,
    idempotent: true,
  },
  readArchive: {
    method: 'GET',
    path: '/sandboxes/{sandbox_id}/files/archive',
    ok: 200,
    idempotent: true,
  },
  writeArchive: {
    method: 'PUT',
    path: '/sandboxes/{sandbox_id}/files/archive',
    ok: 200,
    idempotent: true,
  },
  extendSandbox: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/extend',
    ok: 200,
    idempotent: true,
  },
  deleteSandbox: { method: 'DELETE', path: '/sandboxes/{sandbox_id}', ok: 204, idempotent: true },
  heartbeat: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/heartbeat',
    ok: 200,
    idempotent: true,
  },
  completeSandbox: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/complete',
    ok: 200,
    idempotent: false,
  },
  reportError: {
    method: 'POST',
    path: '/sandboxes/{sandbox_id}/error',
    ok: 200,
    idempotent: false,
  },
  getStorage: { method: 'GET', path: '/users/{user_id}/storage', ok: 200, idempotent: true },
  deleteStorage: {
    method: 'DELETE',
    path: '/users/{user_id}/storage',
    ok: 200,
    idempotent: true,
  },
} as const satisfies Record<RouteName, ClientRoute>;

/** The input type of a route's schema K (params, query or body); never when it has none. */
type Input<R, K extends string> = R extends { [key in K]: infer S }
  ? S extends z.ZodType
    ? z.input<S>
    : never
  : never;

/** A query's values as a caller gives them: the schema reads strings, numbers are written out. */
type QueryInput<T> = { [K in keyof T]?: T[K] | number | boolean };

/** What a call of route N sends: its path parameters, query and body, typed by its schemas. */
export interface RouteRequest<N extends RouteName> {
  params?: Input<Routes[N], 'params'>;
  query?: QueryInput<Input<Routes[N], 'query'>>;
  body?: Input<Routes[N], 'body'>;
}
