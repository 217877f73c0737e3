import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import type { z } from 'zod';
import { ROUTES } from '../../client/routes.js';
import type { RouteResponses } from '../../client/types.js';
import { loadConfig } from '../../lib/config.js';
import { buildRoutes, routeLimits, type RouteName } from '../../lib/http/routes.js';
import * as f from '../../lib/http/fileSchemas.js';
import * as s from '../../lib/http/schemas.js';

/** The schema each route answers with on success, as the client types it (none: no body). */
const SUCCESS_SCHEMAS = {
  health: s.healthResponse,
  createSandbox: s.sandboxResponse,
  listSandboxes: s.sandboxListResponse,
  getSandbox: s.sandboxResponse,
  execCommand: s.execResponse,
  startProcess: s.processResponse,
  listProcesses: s.processListResponse,
  getProcess: s.processResponse,
  readProcessOutput: s.processOutputResponse,
  writeProcessStdin: s.processResponse,
  killProcess: s.processResponse,
  readFile: undefined,
  writeFile: f.fileEntryResponse,
  listFiles: f.fileListResponse,
  statFile: f.fileEntryResponse,
  deleteFile: undefined,
  makeDir: f.fileEntryResponse,
  moveFile: f.fileEntryResponse,
  editFile: f.editResponse,
  searchFiles: f.searchResponse,
  readArchive: undefined,
  writeArchive: f.archiveInResponse,
  extendSandbox: s.sandboxResponse,
  deleteSandbox: undefined,
  heartbeat: s.heartbeatResponse,
  completeSandbox: s.completeResponse,
  reportError: s.errorReportResponse,
  getStorage: s.storageUsageResponse,
  deleteStorage: s.storageDeletedResponse,
} as const satisfies Record<RouteName, z.ZodType | undefined>;

// Type-level: the client's answer types are these schemas' outputs, route by route. A schema that
// changes under the client, or a client type that drifts, fails `npm run typecheck`.
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type OutputOf<T> = T extends z.ZodType ? z.output<T> : undefined;
type Drift = {
  [N in RouteName]: Equal<RouteResponses[N], OutputOf<(typeof SUCCESS_SCHEMAS)[N]>>;
}[RouteName];
const noDrift: Drift = true;
const sameRoutes: Equal<keyof RouteResponses, RouteName> = true;

describe("the client's routes", () => {
  const routes = buildRoutes(routeLimits(loadConfig({})));

  it('are the API’s: every route, its method and path, its success status', () => {
    expect(noDrift && sameRoutes).toBe(true);
    expect(Object.keys(ROUTES).sort()).toEqual(Object.keys(routes).sort());
    for (const name of Object.keys(routes) as RouteName[]) {
      const route = routes[name];
      const client = ROUTES[name];
      expect([name, client.method, client.path]).toEqual([
        name,
        route.method.toUpperCase(),
        route.path,
      ]);
      const success = Object.keys(route.responses)
        .map(Number)
        .filter((code) => code < 300);
      expect([name, success]).toEqual([name, [client.ok]]);
    }
  });

  it('expect the schema each route answers with', () => {
    for (const name of Object.keys(routes) as RouteName[]) {
      const declared = routes[name].responses[ROUTES[name].ok]?.schema;
      expect(declared === SUCCESS_SCHEMAS[name] ? name : `${name}: another schema`).toBe(name);
    }
  });
});

const CLIENT_DIR = fileURLToPath(new URL('../../client/', import.meta.url));

describe('the client core', () => {
  it('imports at runtime nothing but its own modules and Node’s: no zod, no dependency', () => {
    const files = readdirSync(CLIENT_DIR).filter((name) => name.endsWith('.ts'));
    expect(files).toContain('index.ts');
    for (const file of files) {
      const source = readFileSync(join(CLIENT_DIR, file), 'utf8');
      const runtime = [...source.matchAll(/^(?:import|export)(?! type)[^;]*?from '([^']+)'/gms)];
      for (const [, from] of runtime)
        expect([file, from]).toEqual([
          file,
          expect.stringMatching(/^(\.\/[\w.]+\.js|node:[\w/]+)$/),
        ]);
    }
  });
});
