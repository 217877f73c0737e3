import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { docker, sandboxContainers } from '../support/docker.js';
import { runtimeRegistered } from '../support/runtimes.js';
import { ownServer, startOwnServer, stopOwnServer, type ExecReply } from '../support/sandboxes.js';
import { until } from '../support/until.js';

const onCrun = await runtimeRegistered('crun');

describe('an OCI runtime the engine does not have', () => {
  it('stops startup with a message naming MATRX_DOCKER_RUNTIME', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'matrx-runtime-'));
    const logFile = join(dir, 'server.log');
    const starting = startServer({
      logFile,
      env: { MATRX_DOCKER_RUNTIME: 'no-such-runtime', MATRX_EMBEDDED_S3_DIR: join(dir, 's3') },
      readyTimeoutMs: 60_000,
    });
    await expect(starting).rejects.toThrow(/exited with 1 before it was ready/);
    expect(readFileSync(logFile, 'utf8')).toContain(
      'MATRX_DOCKER_RUNTIME=no-such-runtime is not a runtime of the Docker engine',
    );
  });
});

(onCrun ? describe : describe.skip)('sandboxes on crun (MATRX_DOCKER_RUNTIME=crun)', () => {
  const user = testUser('crun');
  let server: RunningServer | undefined;
  const { call, create } = ownServer(() => server?.baseUrl);

  beforeAll(async () => {
    server = await startOwnServer('crun', {
      MATRX_DOCKER_RUNTIME: 'crun',
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_CONTAINER_MEMORY_LIMIT: '512m',
      MATRX_SHUTDOWN_TIMEOUT_SECONDS: '2',
    });
  });
  afterAll(() => stopOwnServer(server, user));

  it('runs on crun, and commands, timeouts and processes work through its channel', async () => {
    const sandbox = await create(user);
    const info = await docker.getContainer(sandbox.container_id ?? '').inspect();
    expect(info.HostConfig.Runtime).toBe('crun');
    expect(info.HostConfig.Memory).toBe(512 * 1024 * 1024);

    const base = `/sandboxes/${sandbox.sandbox_id}`;
    const ran = await call<ExecReply>('POST', `${base}/exec`, {
      command: 'echo "hi from $(id -un)"; cat',
      stdin: 'read from stdin',
    });
    expect(ran.status).toBe(200);
    expect(ran.body).toMatchObject({ exit_code: 0, stdout: 'hi from agent\nread from stdin' });

    // The timeout's kill finds the command by its environment (/proc/PID/environ).
    const slow = await call<ExecReply>('POST', `${base}/exec`, {
      command: 'setsid sleep 60 & sleep 60',
      timeout: 1,
    });
    expect(slow.body).toMatchObject({ exit_code: 124, timed_out: true });
    const left = await call<ExecReply>('POST', `${base}/exec`, {
      command: "pgrep -f 'sleep 6[0]' || echo none",
    });
    expect(left.body.stdout).toBe('none\n');

    // A background process's stdin is a FIFO.
    const started = await call<{ process_id: string }>('POST', `${base}/processes`, {
      command: 'tr a-z A-Z',
    });
    expect(started.status).toBe(201);
    const processPath = `${base}/processes/${started.body.process_id}`;
    const written = await call('POST', `${processPath}/stdin`, { data: 'on crun\n', eof: true });
    expect(written.status).toBe(200);
    await until('the process read its stdin and ended', async () => {
      const read = await call<{ stdout: string; status: string }>('GET', `${processPath}/output`);
      return read.body.status === 'exited' && read.body.stdout === 'ON CRUN\n';
    });

    const health = await call<{ channels: { fallback: number } }>('GET', '/health');
    expect(health.body.channels.fallback).toBe(0);

    const deleted = await call('DELETE', `${base}?graceful=false`);
    expect(deleted.status).toBe(204);
    await until('the container is gone', async () => (await sandboxContainers(user)).length === 0);
  });
});
