import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { sandboxContainers } from '../support/docker.js';
import {
  ownServer,
  startOwnServer,
  stopOwnServer,
  type ExecReply,
  type WireSandbox,
} from '../support/sandboxes.js';
import { until } from '../support/until.js';

const user = testUser('disk');
const LIMIT_BYTES = 64 * 1024 ** 2;
let server: RunningServer | undefined;
const { call, create } = ownServer(() => server?.baseUrl);

beforeAll(async () => {
  server = await startOwnServer('disk', {
    MATRX_CONTAINER_DISK_LIMIT: '64m',
    // The disk check's interval: a second, so the test waits little.
    MATRX_HEALTHCHECK_INTERVAL_SECONDS: '1',
    MATRX_DOCKER_NETWORK: 'none',
    MATRX_SHUTDOWN_TIMEOUT_SECONDS: '2',
  });
});
afterAll(() => stopOwnServer(server, user));

const run = (sandbox: WireSandbox, command: string) =>
  call<ExecReply>('POST', `/sandboxes/${sandbox.sandbox_id}/exec`, { command, timeout: 60 });

async function failedWith(sandbox: WireSandbox): Promise<string> {
  let lastError = '';
  await until(
    `${sandbox.sandbox_id} is failed`,
    async () => {
      const got = await call<WireSandbox & { last_error: string | null }>(
        'GET',
        `/sandboxes/${sandbox.sandbox_id}`,
      );
      lastError = got.body.last_error ?? '';
      return got.body.status === 'failed';
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await until('its container is gone', async () => (await sandboxContainers(user)).length === 0);
  return lastError;
}

describe('MATRX_CONTAINER_DISK_LIMIT', () => {
  let mode = 'unknown';

  it('/health says how the limit is held', async () => {
    const health = await call<{ disk: { mode: string; limit_bytes: number } }>('GET', '/health');
    mode = health.body.disk.mode;
    expect(['quota', 'measured']).toContain(mode);
    expect(health.body.disk.limit_bytes).toBe(LIMIT_BYTES);
  });

  it('quota: a write past the limit fails inside the sandbox, which goes on', async () => {
    if (mode !== 'quota') return; // this engine cannot size a container: the tests below run
    const sandbox = await create(user);
    const wrote = await run(sandbox, 'head -c 100M /dev/zero > /tmp/big; echo $?; rm /tmp/big');
    expect(wrote.body.stderr).toMatch(/No space left on device|Disk quota exceeded/);
    expect((await run(sandbox, 'echo alive')).body.stdout).toBe('alive\n');
    expect((await call('DELETE', `/sandboxes/${sandbox.sandbox_id}?graceful=false`)).status).toBe(
      204,
    );
  });

  it('measured: a sandbox over the limit is ended, failed, its home saved when it fits', async () => {
    if (mode !== 'measured') return;
    const sandbox = await create(user);
    // fallocate: each file is there whole at once, whenever the watcher looks (a `head -c` was
    // once measured half written).
    const wrote = await run(sandbox, 'echo kept > notes.txt && fallocate -l 100M /tmp/big');
    expect(wrote.body.exit_code).toBe(0);
    expect(await failedWith(sandbox)).toMatch(
      /^Disk limit exceeded: the sandbox wrote 1\d\d\.\d MiB, over MATRX_CONTAINER_DISK_LIMIT \(64\.0 MiB\); its home \(0\.0 MiB\) was saved$/,
    );

    // The next sandbox of the user finds the home; a home over the limit by itself is not kept.
    const next = await create(user);
    expect((await run(next, 'cat notes.txt')).body.stdout).toBe('kept\n');
    expect((await run(next, 'fallocate -l 80M big-home')).body.exit_code).toBe(0);
    expect(await failedWith(next)).toMatch(
      /its home alone \(80\.0 MiB\) is over the limit and was not saved$/,
    );
    const third = await create(user);
    expect((await run(third, 'cat notes.txt; ls big-home 2>&1')).body.stdout).toMatch(
      /^kept\nls: cannot access 'big-home'/,
    );
    expect((await call('DELETE', `/sandboxes/${third.sandbox_id}?graceful=false`)).status).toBe(
      204,
    );
  });
});
