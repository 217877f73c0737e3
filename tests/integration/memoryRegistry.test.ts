import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { docker, sandboxContainers } from '../support/docker.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';
import { until } from '../support/until.js';

/**
 * With the memory registry there is no separate reconciler: the API adopts its host's sandbox
 * containers when it starts and runs the passes itself.
 */
interface WireOutput {
  stdout: string;
  stdout_offset: number;
}

let workDir: string;
let server: RunningServer | undefined;
const hostId = `it-mem-${randomBytes(3).toString('hex')}`;
const env = {
  MATRX_HOST_ID: hostId,
  MATRX_DOCKER_NETWORK: 'none',
  MATRX_SHUTDOWN_TIMEOUT_SECONDS: '1',
  MATRX_RECONCILE_INTERVAL_SECONDS: '1',
  MATRX_RECONCILE_GRACE_SECONDS: '0',
  MATRX_MAX_SESSION_DURATION_SECONDS: '600',
};

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'matrx-memory-'));
});

afterAll(async () => {
  await server?.stop();
});

async function start(extra: Record<string, string> = {}) {
  await server?.stop();
  const logFile = join(workDir, `server-${Date.now()}.log`);
  server = await startServer({
    logFile,
    env: { ...env, MATRX_EMBEDDED_S3_DIR: join(workDir, 's3'), ...extra },
  });
  return server;
}

const { call } = ownServer(() => server?.baseUrl);

describe('the memory registry across restarts', () => {
  it('a restarted API adopts its live sandboxes: listed, and exec works', async () => {
    const user = testUser('adopt');
    await start();
    const created = await call<WireSandbox>('POST', '/sandboxes', { user_id: user });
    expect(created.status).toBe(201);
    const id = created.body.sandbox_id;
    await start();
    const listed = await call<{ sandboxes: WireSandbox[] }>('GET', `/sandboxes?user_id=${user}`);
    expect(listed.body.sandboxes).toMatchObject([
      { sandbox_id: id, user_id: user, status: 'running', container_id: created.body.container_id },
    ]);
    const ran = await call<ExecReply>('POST', `/sandboxes/${id}/exec`, { command: 'echo adopted' });
    expect(ran.body.stdout).toBe('adopted\n');
    expect((await call('DELETE', `/sandboxes/${id}`)).status).toBe(204);
    expect(await sandboxContainers(user)).toEqual([]);
  });

  it('a background process, its output and the cwd live in the sandbox: a restarted API has them', async () => {
    const user = testUser('proc-restart');
    await start();
    const created = await call<WireSandbox>('POST', '/sandboxes', { user_id: user });
    const id = created.body.sandbox_id;
    await call<ExecReply>('POST', `/sandboxes/${id}/exec`, { command: 'cd /tmp' });
    const started = await call<{ process_id: string }>('POST', `/sandboxes/${id}/processes`, {
      command: 'for i in $(seq 1 600); do echo "line $i"; sleep 0.1; done',
    });
    expect(started.status).toBe(201);
    const processPath = `/sandboxes/${id}/processes/${started.body.process_id}`;
    const before = await call<WireOutput>('GET', `${processPath}/output?wait=5`);
    expect(before.body.stdout).toMatch(/^line 1\n/);

    await start();
    const got = await call<{ status: string; cwd: string }>('GET', processPath);
    expect(got.body).toMatchObject({ status: 'running', cwd: '/tmp' });
    // It went on writing while no API ran: the lines after the first read follow on.
    const after = await call<WireOutput>(
      'GET',
      `${processPath}/output?stdout_offset=${before.body.stdout_offset}&wait=5`,
    );
    const next = Number(
      /line (\d+)/.exec(before.body.stdout.trimEnd().split('\n').pop() ?? '')?.[1],
    );
    expect(after.body.stdout).toMatch(new RegExp(`^line ${next + 1}\n`));
    const pwd = await call<ExecReply>('POST', `/sandboxes/${id}/exec`, { command: 'pwd' });
    expect(pwd.body.stdout).toBe('/tmp\n');
    const killed = await call<{ status: string }>('DELETE', `${processPath}?signal=KILL`);
    expect(killed.body.status).toBe('killed');
    expect((await call('DELETE', `/sandboxes/${id}`)).status).toBe(204);
  });

  it('an adopted sandbox past its maximum duration is expired and its container removed', async () => {
    const user = testUser('old');
    const id = `sbx-${randomBytes(6).toString('hex')}`;
    const old = await docker.createContainer({
      name: id,
      Image: 'matrx-sandbox:latest',
      Labels: {
        'matrx.sandbox_id': id,
        'matrx.user_id': user,
        'matrx.host_id': hostId,
        'matrx.created_at': new Date(Date.now() - 3 * 3_600_000).toISOString(),
      },
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      await old.start();
      await start();
      await until('the sandbox is expired', async () => {
        const got = await call<WireSandbox>('GET', `/sandboxes/${id}`);
        return got.body.status === 'expired';
      });
      expect(await sandboxContainers(user)).toEqual([]);
    } finally {
      await old.remove({ force: true }).catch(() => undefined);
    }
  });
});
