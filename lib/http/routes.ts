import type { z } from 'zod';
import * as s from './schemas.js';

export interface RouteSpec {
  /** The function's name in serverless.yml. */
  functionName: string;
  method: 'get' | 'post' | 'delete';
  /** API Gateway style, as in serverless.yml. */
  path: string;
  summary: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  bodyRequired?: boolean;
  responses: Record<number, { description: string; schema?: z.ZodType }>;
}

const notFound = { description: 'Sandbox not found', schema: s.errorResponse };
const invalid = { description: 'Validation error', schema: s.validationErrorResponse };
const dockerDown = { description: 'Docker engine unavailable', schema: s.errorResponse };
const s3Down = { description: 'S3 unavailable', schema: s.errorResponse };

/** Every API route, once: handlers validate with it and /openapi.json is generated from it. */
export function buildRoutes(limits: { maxCommandLength: number }) {
  return {
    health: {
      functionName: 'health',
      method: 'get',
      path: '/health',
      summary: 'Service health and its dependencies (no auth)',
      query: s.healthQuery,
      responses: {
        200: { description: 'Health', schema: s.healthResponse },
        422: invalid,
        503: { description: 'Degraded, with ?strict=1', schema: s.healthResponse },
      },
    },
    createSandbox: {
      functionName: 'createSandbox',
      method: 'post',
      path: '/sandboxes',
      summary: 'Create a sandbox; answers once it is ready (or failed)',
      body: s.createSandboxBody,
      bodyRequired: true,
      responses: {
        201: { description: 'The sandbox', schema: s.sandboxResponse },
        422: invalid,
        503: dockerDown,
      },
    },
    listSandboxes: {
      functionName: 'listSandboxes',
      method: 'get',
      path: '/sandboxes',
      summary: 'List sandboxes, optionally of one user',
      query: s.listQuery,
      responses: { 200: { description: 'Sandboxes', schema: s.sandboxListResponse }, 422: invalid },
    },
    getSandbox: {
      functionName: 'getSandbox',
      method: 'get',
      path: '/sandboxes/{sandbox_id}',
      summary: 'Get one sandbox',
      params: s.sandboxIdPath,
      responses: { 200: { description: 'The sandbox', schema: s.sandboxResponse }, 404: notFound },
    },
    execCommand: {
      functionName: 'execCommand',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/exec',
      summary: 'Run a command with bash -c in the sandbox',
      params: s.sandboxIdPath,
      body: s.execBody(limits.maxCommandLength),
      bodyRequired: true,
      responses: {
        200: { description: 'Exit code and output', schema: s.execResponse },
        404: notFound,
        409: { description: 'Sandbox not running', schema: s.errorResponse },
        422: invalid,
        503: dockerDown,
      },
    },
    deleteSandbox: {
      functionName: 'deleteSandbox',
      method: 'delete',
      path: '/sandboxes/{sandbox_id}',
      summary: 'Stop and remove a sandbox',
      params: s.sandboxIdPath,
      query: s.deleteQuery,
      responses: { 204: { description: 'Gone' }, 404: notFound, 503: dockerDown },
    },
    heartbeat: {
      functionName: 'heartbeat',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/heartbeat',
      summary: 'Record that the agent is alive',
      params: s.sandboxIdPath,
      responses: {
        200: { description: 'Acknowledged', schema: s.heartbeatResponse },
        404: notFound,
      },
    },
    completeSandbox: {
      functionName: 'completeSandbox',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/complete',
      summary: 'The agent is done: graceful shutdown starts',
      params: s.sandboxIdPath,
      body: s.completeBody,
      responses: {
        200: { description: 'Shutting down', schema: s.completeResponse },
        404: notFound,
        422: invalid,
      },
    },
    reportError: {
      functionName: 'reportError',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/error',
      summary: 'The agent reports an error: it is logged and graceful shutdown starts',
      params: s.sandboxIdPath,
      body: s.errorBody,
      bodyRequired: true,
      responses: {
        200: { description: 'Shutting down', schema: s.errorReportResponse },
        404: notFound,
        422: invalid,
      },
    },
    getStorage: {
      functionName: 'getStorage',
      method: 'get',
      path: '/users/{user_id}/storage',
      summary: "A user's stored files, per tier",
      params: s.userIdPath,
      responses: {
        200: { description: 'Sizes and counts', schema: s.storageUsageResponse },
        422: invalid,
        503: s3Down,
      },
    },
    deleteStorage: {
      functionName: 'deleteStorage',
      method: 'delete',
      path: '/users/{user_id}/storage',
      summary: "Empty one tier of a user's stored files",
      params: s.userIdPath,
      query: s.tierQuery,
      responses: {
        200: { description: 'How many objects were deleted', schema: s.storageDeletedResponse },
        422: invalid,
        503: s3Down,
      },
    },
  } satisfies Record<string, RouteSpec>;
}

export type Routes = ReturnType<typeof buildRoutes>;
export type RouteName = keyof Routes;

/** Routes that never need the API key: load balancers and monitors call them. */
export const PUBLIC_ROUTES: ReadonlySet<RouteName> = new Set<RouteName>(['health']);
