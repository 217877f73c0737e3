import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { sandboxContainers } from '../support/docker.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';
import { until } from '../support/until.js';

/**
 * The API SIGKILLed (the launcher, serverless-offline and its embedded S3 at once) in the middle
 * of an exec and of a delete, then started again on the same host id and S3 directory. The
 * memory registry has no rows to lose: what must hold is that the sandbox comes back or ends
 * with its home saved, that no container is left behind, and that the request in flight fails
 * at once (a reset connection) rather than hanging.
 */
const REQUEST_FAILS_WITHIN_MS = 5_000;
const CONVERGES_WITHIN_MS = 60_000;

let workDir: string;
let server: RunningServer | undefined;
const hostId = `it-kill-${randomBytes(3).toString('hex')}`;

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'matrx-kill-'));
});
afterAll(async () => {
  await server?.stop();
});

async function start() {
  await server?.stop();
  server = await startServer({
    logFile: join(workDir, `server-${Date.now()}.log`),
    env: {
      MATRX_HOST_ID: hostId,
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_CONTAINER_MEMORY_LIMIT: '512m',
      MATRX_CONTAINER_CPU_LIMIT: '1',
      MATRX_SHUTDOWN_TIMEOUT_SECONDS: '3',
      MATRX_RECONCILE_INTERVAL_SECONDS: '1',
      MATRX_RECONCILE_GRACE_SECONDS: '0',
      MATRX_EMBEDDED_S3_DIR: join(workDir, 's3'),
    },
  });
}

const { call, create } = ownServer(() => server?.baseUrl);

/** Starts the requests, SIGKILLs the API `afterMs` into them; resolves how long each took to fail. */
async function killDuring(requests: (() => Promise<unknown>)[], afterMs: number) {
  const failedAt = requests.map(() => 0);
  const inFlight = requests.map((request, index) =>
    request().then(
      () => undefined,
      () => {
        failedAt[index] = Date.now();
      },
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, afterMs));
  const killedAt = Date.now();
  await server?.kill();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(inFlight),
    new Promise((resolve) => (timer = setTimeout(resolve, 30_000))),
  ]);
  clearTimeout(timer);
  return failedAt.map((at) => (at === 0 ? Infinity : at - killedAt));
}

async function homeFileOfNewSandbox(user: string): Promise<string> {
  const again = await create(user);
  const read = await call<ExecReply>('POST', `/sandboxes/${again.sandbox_id}/exec`, {
    command: 'cat ~/kept.txt',
  });
  expect((await call('DELETE', `/sandboxes/${again.sandbox_id}`)).status).toBe(204);
  return read.body.stdout;
}

// The API starts twice on a machine that may be loaded: starts take seconds each.
jest.setTimeout(240_000);

describe('the API SIGKILLed', () => {
  it('mid-exec and mid-delete: both fail at once; after a restart one sandbox is adopted, the other ended, homes intact', async () => {
    const execUser = testUser('kill-exec');
    const deleteUser = testUser('kill-delete');
    await start();
    const [running, deleting] = [await create(execUser), await create(deleteUser)];
    const runningPath = `/sandboxes/${running.sandbox_id}`;
    const deletingPath = `/sandboxes/${deleting.sandbox_id}`;
    for (const path of [runningPath, deletingPath]) {
      await call('POST', `${path}/exec`, { command: 'echo kept > ~/kept.txt' });
    }
    // A process that ignores SIGTERM keeps the graceful stop busy when the API dies.
    await call('POST', `${deletingPath}/processes`, { command: "trap '' TERM; sleep 600" });

    const failedIn = await killDuring(
      [
        () => fetch(`${server?.baseUrl}${runningPath}/exec`, postJson({ command: 'sleep 20' })),
        () => fetch(`${server?.baseUrl}${deletingPath}`, { method: 'DELETE' }),
      ],
      1_000,
    );
    expect(failedIn.every((ms) => ms < REQUEST_FAILS_WITHIN_MS)).toBe(true);

    await start();
    // Mid-exec: adopted, the home in the container.
    const adopted = await call<WireSandbox>('GET', runningPath);
    expect(adopted.body.status).toBe('running');
    const read = await call<ExecReply>('POST', `${runningPath}/exec`, {
      command: 'cat ~/kept.txt',
    });
    expect(read.body.stdout).toBe('kept\n');
    // Mid-delete: the engine finished the stop without the API; a pass ends the stopped container.
    await until(
      'no container of the deleted sandbox is left',
      async () => (await sandboxContainers(deleteUser)).length === 0,
      { timeoutMs: CONVERGES_WITHIN_MS },
    );

    expect((await call('DELETE', runningPath)).status).toBe(204);
    for (const user of [execUser, deleteUser]) {
      expect(await homeFileOfNewSandbox(user)).toBe('kept\n');
      expect(await sandboxContainers(user)).toEqual([]);
    }
  });
});

function postJson(body: unknown): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}
