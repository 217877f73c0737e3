import { z } from 'zod';
import { DOCS_ASSET_NAMES } from './docsPage.js';
import type { Settings } from '../config.js';
import type { ConfigCaps } from './configSchema.js';
import * as f from './fileSchemas.js';
import * as s from './schemas.js';

export interface ResponseSpec {
  description: string;
  /** The JSON body; none for a 204 or a body that is not JSON. */
  schema?: z.ZodType;
  /** The media type of a body of raw bytes. */
  mediaType?: string;
}

export interface RouteSpec {
  /** The function's name in serverless.yml. */
  functionName: string;
  method: 'get' | 'post' | 'put' | 'delete';
  /** API Gateway style, as in serverless.yml. */
  path: string;
  summary: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  bodyRequired?: boolean;
  /** The media type of a body of raw bytes, taken as it came (never parsed as JSON). */
  rawBody?: string;
  /** Every answer: a route lists its own, `withSharedResponses` adds those any route gives. */
  responses: Record<number, ResponseSpec>;
}

const error = (description: string): ResponseSpec => ({ description, schema: s.errorResponse });

const otherHost = error('The sandbox runs on another host, or cannot make this move now');
const notRunning = error('The sandbox is not running, or runs on another host');
const processMissing = error('Sandbox or process not found');
const pathDenied = error('Permission denied: the user may not do this to the path');
const pathMissing = error('Sandbox not found, or no such file or directory');
const tooLarge = error('Over MATRX_MAX_FILE_BYTES');

const LOOKED_UP_IDS = ['sandbox_id', 'process_id'];

/** Routes that never need the API key: load balancers and monitors call them. */
const PUBLIC_ROUTE_NAMES = ['health'] as const;

/**
 * What a route can answer whatever it does, declared once. Every route: 503 while the service
 * shuts down (or a dependency is down). With the API key: 401, 403. A route of `routeHandler`
 * (lib/http/stack.ts) also parses a JSON body (400; GET bodies never reach it), answers 404 for a
 * malformed or unknown sandbox id, and 422 when it validates anything else.
 */
function sharedResponses(
  route: Partial<Pick<RouteSpec, 'method' | 'params' | 'query' | 'body' | 'rawBody'>>,
  options: { isPublic: boolean; routeHandler: boolean },
): Record<number, ResponseSpec> {
  const params = Object.keys(route.params?.shape ?? {});
  // An id in the path is looked up, never validated: a malformed one is a 404.
  const validates =
    Boolean(route.query || route.body) || params.some((n) => !LOOKED_UP_IDS.includes(n));
  const shared: Record<number, ResponseSpec> = {
    503: error('The service is shutting down, or a dependency (Docker, Postgres, S3) is down'),
  };
  if (!options.isPublic) {
    shared[401] = error('No API key: the answer carries WWW-Authenticate');
    shared[403] = error('Wrong API key');
  }
  if (!options.routeHandler) return shared;
  if (route.method !== 'get' && !route.rawBody) {
    shared[400] = error('Malformed JSON in the request body');
  }
  if (params.includes('sandbox_id')) shared[404] = error('Sandbox not found');
  if (validates)
    shared[422] = { description: 'Validation error', schema: s.validationErrorResponse };
  return shared;
}

type WithShared<T extends Record<string, RouteSpec>> = {
  [K in keyof T]: Omit<T[K], 'responses'> & { responses: Record<number, ResponseSpec> };
};

function withSharedResponses<T extends Record<string, RouteSpec>>(
  routes: T,
  routeHandler: boolean,
): WithShared<T> {
  const merged = Object.entries(routes).map(([name, route]) => {
    const isPublic = (PUBLIC_ROUTE_NAMES as readonly string[]).includes(name);
    const shared = sharedResponses(route, { isPublic, routeHandler });
    return [name, { ...route, responses: { ...shared, ...route.responses } }];
  });
  return Object.fromEntries(merged) as WithShared<T>;
}

/** Every API route, once: handlers validate with it and /openapi.json is generated from it. */
export interface RouteLimits {
  maxCommandLength: number;
  config: ConfigCaps;
}

/** The limits the routes validate against, from the settings. */
export function routeLimits(settings: Settings): RouteLimits {
  return {
    maxCommandLength: settings.MAX_COMMAND_LENGTH,
    config: {
      templates: Object.keys(settings.SANDBOX_TEMPLATES),
      cpuLimit: settings.CONTAINER_CPU_LIMIT,
      memoryLimitBytes: settings.CONTAINER_MEMORY_LIMIT,
      maxSessionSeconds: settings.MAX_SESSION_DURATION_SECONDS,
      allowedNetworks: settings.ALLOWED_NETWORKS,
    },
  };
}

export function buildRoutes(limits: RouteLimits) {
  const routes = {
    health: {
      functionName: 'health',
      method: 'get',
      path: '/health',
      summary: 'Service health and its dependencies (no auth)',
      query: s.healthQuery,
      responses: {
        200: { description: 'Health', schema: s.healthResponse },
        503: {
          description: 'Degraded, with ?strict=1; or the service is shutting down',
          schema: z.union([s.healthResponse, s.errorResponse]),
        },
      },
    },
    createSandbox: {
      functionName: 'createSandbox',
      method: 'post',
      path: '/sandboxes',
      summary: 'Create a sandbox; answers once it is ready (or failed)',
      body: s.createSandboxBody(limits.config),
      bodyRequired: true,
      responses: {
        201: { description: 'The sandbox', schema: s.sandboxResponse },
        409: error('The sandbox was deleted while it was being created'),
      },
    },
    listSandboxes: {
      functionName: 'listSandboxes',
      method: 'get',
      path: '/sandboxes',
      summary: 'List sandboxes, optionally of one user',
      query: s.listQuery,
      responses: { 200: { description: 'Sandboxes', schema: s.sandboxListResponse } },
    },
    getSandbox: {
      functionName: 'getSandbox',
      method: 'get',
      path: '/sandboxes/{sandbox_id}',
      summary: 'Get one sandbox',
      params: s.sandboxIdPath,
      responses: { 200: { description: 'The sandbox', schema: s.sandboxResponse } },
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
        409: error('The sandbox is not running, or runs on another host'),
      },
    },
    startProcess: {
      functionName: 'startProcess',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/processes',
      summary: 'Start a command with bash -c in the background; read its output later',
      params: s.sandboxIdPath,
      body: s.startProcessBody(limits.maxCommandLength),
      bodyRequired: true,
      responses: {
        201: { description: 'The process, running', schema: s.processResponse },
        409: notRunning,
      },
    },
    listProcesses: {
      functionName: 'listProcesses',
      method: 'get',
      path: '/sandboxes/{sandbox_id}/processes',
      summary: "The sandbox's background processes, oldest first",
      params: s.sandboxIdPath,
      responses: {
        200: { description: 'Processes', schema: s.processListResponse },
        409: notRunning,
      },
    },
    getProcess: {
      functionName: 'getProcess',
      method: 'get',
      path: '/sandboxes/{sandbox_id}/processes/{process_id}',
      summary: 'One background process',
      params: s.processPath,
      responses: {
        200: { description: 'The process', schema: s.processResponse },
        404: processMissing,
        409: notRunning,
      },
    },
    readProcessOutput: {
      functionName: 'readProcessOutput',
      method: 'get',
      path: '/sandboxes/{sandbox_id}/processes/{process_id}/output',
      summary: "A process's output from the offsets on, waiting for some if asked",
      params: s.processPath,
      query: s.outputQuery,
      responses: {
        200: { description: 'Output, next offsets and status', schema: s.processOutputResponse },
        404: processMissing,
        409: notRunning,
      },
    },
    writeProcessStdin: {
      functionName: 'writeProcessStdin',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/processes/{process_id}/stdin',
      summary: "Write to a process's stdin, and close it if asked",
      params: s.processPath,
      body: s.stdinBody(limits.maxCommandLength),
      bodyRequired: true,
      responses: {
        200: { description: 'The process', schema: s.processResponse },
        404: processMissing,
        409: error(
          'The process has ended or its stdin is closed; or the sandbox is not running, or runs on another host',
        ),
      },
    },
    killProcess: {
      functionName: 'killProcess',
      method: 'delete',
      path: '/sandboxes/{sandbox_id}/processes/{process_id}',
      summary: 'Kill a process and everything it started; answers once they are gone',
      params: s.processPath,
      query: s.killQuery,
      responses: {
        200: { description: 'The process, ended', schema: s.processResponse },
        404: processMissing,
        409: notRunning,
      },
    },
    readFile: {
      functionName: 'readFile',
      method: 'get',
      path: '/sandboxes/{sandbox_id}/files',
      summary: 'The bytes of a file, read as the user',
      params: s.sandboxIdPath,
      query: f.pathQuery,
      responses: {
        200: { description: 'The bytes', mediaType: 'application/octet-stream' },
        403: pathDenied,
        404: pathMissing,
        409: error('A directory or not a regular file; or the sandbox is not running'),
        413: tooLarge,
      },
    },
    writeFile: {
      functionName: 'writeFile',
      method: 'put',
      path: '/sandboxes/{sandbox_id}/files',
      summary: 'Write a file from the raw body, as the user, in one step; parents are made',
      params: s.sandboxIdPath,
      query: f.writeQuery,
      rawBody: 'application/octet-stream',
      responses: {
        200: { description: 'The file written', schema: f.fileEntryResponse },
        403: pathDenied,
        404: error('Sandbox not found'),
        409: error('A directory is in the way; or the sandbox is not running'),
        413: tooLarge,
      },
    },
    listFiles: {
      functionName: 'listFiles',
      method: 'get',
      path: '/sandboxes/{sandbox_id}/files/list',
      summary: 'What is in a directory, depth levels down, sorted by path',
      params: s.sandboxIdPath,
      query: f.listQuery,
      responses: {
        200: { description: 'The entries', schema: f.fileListResponse },
        403: pathDenied,
        404: pathMissing,
        409: error('Not a directory; or the sandbox is not running'),
      },
    },
    statFile: {
      functionName: 'statFile',
      method: 'get',
      path: '/sandboxes/{sandbox_id}/files/stat',
      summary: 'One entry; a symlink is itself, with its target',
      params: s.sandboxIdPath,
      query: f.pathQuery,
      responses: {
        200: { description: 'The entry', schema: f.fileEntryResponse },
        403: pathDenied,
        404: pathMissing,
        409: notRunning,
      },
    },
    deleteFile: {
      functionName: 'deleteFile',
      method: 'delete',
      path: '/sandboxes/{sandbox_id}/files',
      summary: 'Delete a file, a symlink or a directory (a non-empty one with recursive)',
      params: s.sandboxIdPath,
      query: f.deleteQuery,
      responses: {
        204: { description: 'Gone' },
        403: pathDenied,
        404: pathMissing,
        409: error('A non-empty directory without recursive; or the sandbox is not running'),
      },
    },
    makeDir: {
      functionName: 'makeDir',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/files/mkdir',
      summary: 'Make a directory and its parents; one that exists is fine',
      params: s.sandboxIdPath,
      body: f.mkdirBody,
      bodyRequired: true,
      responses: {
        200: { description: 'The directory', schema: f.fileEntryResponse },
        403: pathDenied,
        404: error('Sandbox not found'),
        409: error('A file is in the way; or the sandbox is not running'),
      },
    },
    moveFile: {
      functionName: 'moveFile',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/files/move',
      summary: 'Move or rename; the parents of to are made',
      params: s.sandboxIdPath,
      body: f.moveBody,
      bodyRequired: true,
      responses: {
        200: { description: 'The entry of to', schema: f.fileEntryResponse },
        403: pathDenied,
        404: pathMissing,
        409: error('to exists and overwrite is false; or the sandbox is not running'),
      },
    },
    editFile: {
      functionName: 'editFile',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/files/edit',
      summary: 'Replace an exact string in a file',
      params: s.sandboxIdPath,
      body: f.editBody,
      bodyRequired: true,
      responses: {
        200: { description: 'How many were replaced', schema: f.editResponse },
        403: pathDenied,
        404: pathMissing,
        409: error('old_string absent, or found more than once without replace_all'),
        413: tooLarge,
      },
    },
    searchFiles: {
      functionName: 'searchFiles',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/files/search',
      summary: 'Lines matching a regular expression, in files under a path',
      params: s.sandboxIdPath,
      body: f.searchBody,
      bodyRequired: true,
      responses: {
        200: { description: 'The matches', schema: f.searchResponse },
        403: pathDenied,
        404: pathMissing,
        409: notRunning,
      },
    },
    readArchive: {
      functionName: 'readArchive',
      method: 'get',
      path: '/sandboxes/{sandbox_id}/files/archive',
      summary: "A tar of a directory's tree, as the user reads it",
      params: s.sandboxIdPath,
      query: f.pathQuery,
      responses: {
        200: { description: 'The tar', mediaType: 'application/x-tar' },
        403: pathDenied,
        404: pathMissing,
        409: error('Not a directory; or the sandbox is not running'),
        413: tooLarge,
      },
    },
    writeArchive: {
      functionName: 'writeArchive',
      method: 'put',
      path: '/sandboxes/{sandbox_id}/files/archive',
      summary: 'Extract a tar into a directory (made if missing), as the user',
      params: s.sandboxIdPath,
      query: f.pathQuery,
      rawBody: 'application/x-tar',
      responses: {
        200: { description: 'What was extracted', schema: f.archiveInResponse },
        403: pathDenied,
        404: error('Sandbox not found'),
        409: error('A file is in the way; or the sandbox is not running'),
        413: tooLarge,
      },
    },
    extendSandbox: {
      functionName: 'extendSandbox',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/extend',
      summary: 'Give the sandbox more time: it now expires ttl_seconds from now',
      params: s.sandboxIdPath,
      body: s.extendBody(limits.config),
      bodyRequired: true,
      responses: {
        200: { description: 'The sandbox, with its new expires_at', schema: s.sandboxResponse },
        409: error('The sandbox is not active, or runs on another host'),
      },
    },
    deleteSandbox: {
      functionName: 'deleteSandbox',
      method: 'delete',
      path: '/sandboxes/{sandbox_id}',
      summary: 'Stop and remove a sandbox',
      params: s.sandboxIdPath,
      query: s.deleteQuery,
      responses: { 204: { description: 'Gone' }, 409: otherHost },
    },
    heartbeat: {
      functionName: 'heartbeat',
      method: 'post',
      path: '/sandboxes/{sandbox_id}/heartbeat',
      summary: 'Record that the agent is alive',
      params: s.sandboxIdPath,
      responses: {
        200: { description: 'Acknowledged', schema: s.heartbeatResponse },
        409: error('The sandbox runs on another host'),
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
        409: otherHost,
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
        409: otherHost,
      },
    },
    getStorage: {
      functionName: 'getStorage',
      method: 'get',
      path: '/users/{user_id}/storage',
      summary: "A user's stored files, per tier",
      params: s.userIdPath,
      responses: { 200: { description: 'Sizes and counts', schema: s.storageUsageResponse } },
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
      },
    },
  } satisfies Record<string, RouteSpec>;
  return withSharedResponses(routes, true);
}

export type Routes = ReturnType<typeof buildRoutes>;
export type RouteName = keyof Routes;

export const PUBLIC_ROUTES: ReadonlySet<RouteName> = new Set<RouteName>(PUBLIC_ROUTE_NAMES);

/**
 * What functions/catchAll.ts serves (lambda-api, no validation), described here so /openapi.json,
 * docs/API.md and the tests know them like the routes above.
 */
export const SERVICE_ROUTES = withSharedResponses(
  {
    root: {
      functionName: 'catchAll',
      method: 'get',
      path: '/',
      summary: 'Service name, version and where the docs are',
      responses: { 200: { description: 'About', schema: s.rootResponse } },
    },
    openapi: {
      functionName: 'catchAll',
      method: 'get',
      path: '/openapi.json',
      summary: 'This API as an OpenAPI 3.1 document',
      responses: { 200: { description: 'The OpenAPI document' } },
    },
    docs: {
      functionName: 'catchAll',
      method: 'get',
      path: '/docs',
      summary: 'Swagger UI for /openapi.json (HTML)',
      responses: { 200: { description: 'The page' } },
    },
    docsAsset: {
      functionName: 'catchAll',
      method: 'get',
      path: '/docs/{asset}',
      summary: "Swagger UI's stylesheet and script, for /docs",
      params: z.object({ asset: z.enum(DOCS_ASSET_NAMES) }),
      responses: {
        200: { description: 'The file (CSS or JavaScript)' },
        404: error('No such file'),
      },
    },
  } satisfies Record<string, RouteSpec>,
  false,
);

/** Any other method and path: the catch-all's JSON 404, behind the same key and drain checks. */
export const UNKNOWN_ROUTE_RESPONSES: Record<number, ResponseSpec> = {
  ...sharedResponses({}, { isPublic: false, routeHandler: false }),
  404: error('No such route'),
};
