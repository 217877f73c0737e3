import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from '@jest/globals';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { api, type ApiResponse } from './api.js';
import { docker, sandboxContainers } from './docker.js';
import { until } from './until.js';

export interface WireSandbox {
  sandbox_id: string;
  user_id: string;
  status: string;
  container_id: string | null;
}

export interface ExecReply {
  exit_code: number;
  stdout: string;
  stderr: string;
  timed_out: boolean;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  cwd: string;
  duration_ms: number;
}

/** One call to a server, JSON in and out. */
export type Call = <T = Record<string, unknown>>(
  method: string,
  path: string,
  json?: unknown,
) => Promise<ApiResponse<T>>;

/** The suite's server, with its API key. */
const suiteServer: Call = (method, path, json) => api(method, path, { json });

/** Calls to a server a test started itself, with no API key; `base` is read at each call. */
/** A server of a test file's own, `env` over the defaults, its log and S3 in a fresh directory. */
export async function startOwnServer(
  name: string,
  env: Record<string, string>,
): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), `matrx-${name}-`));
  return startServer({
    logFile: join(dir, 'server.log'),
    env: { MATRX_EMBEDDED_S3_DIR: join(dir, 's3'), ...env },
  });
}

/** Stops a server of a test file's own, then removes what containers of `userId` it left. */
export async function stopOwnServer(server: RunningServer | undefined, userId: string) {
  await server?.stop();
  for (const container of await sandboxContainers(userId)) {
    await docker.getContainer(container.Id).remove({ force: true });
  }
}

export function ownServer(base: () => string | undefined) {
  const call: Call = (method, path, json) => api(method, path, { base: base(), json, headers: {} });
  return { call, create: (userId: string) => createReady(userId, call) };
}

export async function createReady(userId: string, call = suiteServer): Promise<WireSandbox> {
  const created = await call<WireSandbox>('POST', '/sandboxes', { user_id: userId });
  expect(created.status).toBe(201);
  expect(created.body.status).toBe('ready');
  return created.body;
}

export function exec(sandboxId: string, command: string, extra: Record<string, unknown> = {}) {
  return api<ExecReply>('POST', `/sandboxes/${sandboxId}/exec`, { json: { command, ...extra } });
}

/** Containers are gone asynchronously after /complete: wait for Docker to agree, boundedly. */
export async function waitUntilNoContainers(userId: string, timeoutMs = 30_000): Promise<void> {
  await until(
    `no container of ${userId} is left`,
    async () => (await sandboxContainers(userId)).length === 0,
    {
      timeoutMs,
    },
  );
}

export async function deleteAll(userId: string): Promise<void> {
  const listed = await api<{ sandboxes: WireSandbox[] }>(
    'GET',
    `/sandboxes?user_id=${encodeURIComponent(userId)}`,
  );
  await Promise.all(
    listed.body.sandboxes.map((s) => api('DELETE', `/sandboxes/${s.sandbox_id}?graceful=false`)),
  );
  await waitUntilNoContainers(userId);
}
