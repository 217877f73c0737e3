import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startEmbeddedS3, type EmbeddedS3 } from '../../lib/embeddedS3.js';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { sandboxContainers } from '../support/docker.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';

/**
 * S3 unreachable during a save: the server reaches an S3 of this suite's own through a loopback
 * proxy the test cuts (connections refused). Every request that needs S3 meanwhile must answer
 * 503 naming S3 within ANSWER_BOUND_MS (the SDK's retries included), the home must stay in the
 * stopped container, and the delete asked again once S3 is back must save it.
 */
const ANSWER_BOUND_MS = 30_000;

let workDir: string;
let s3: EmbeddedS3;
let proxy: TcpProxy;
let server: RunningServer;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'matrx-s3cut-'));
  s3 = await startEmbeddedS3(join(workDir, 's3'), 0);
  proxy = await startTcpProxy(Number(new URL(s3.endpoint).port));
  server = await startServer({
    logFile: join(workDir, 'server.log'),
    env: {
      ...s3.env,
      AWS_ENDPOINT_URL_S3: proxy.url,
      MATRX_HOST_ID: `it-s3cut-${randomBytes(3).toString('hex')}`,
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_CONTAINER_MEMORY_LIMIT: '512m',
      MATRX_CONTAINER_CPU_LIMIT: '1',
      MATRX_SHUTDOWN_TIMEOUT_SECONDS: '1',
    },
  });
});
afterAll(async () => {
  await server?.stop();
  await proxy?.close();
  await s3?.close();
});

const { call, create } = ownServer(() => server.baseUrl);

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = Date.now();
  const result = await work();
  return [result, Date.now() - started];
}

describe('S3 unreachable during a save', () => {
  it('the delete is a 503 naming S3, the home waits in the container, and a later delete saves it', async () => {
    const user = testUser('s3cut');
    const sandbox = await create(user);
    const path = `/sandboxes/${sandbox.sandbox_id}`;
    await call('POST', `${path}/exec`, { command: 'echo kept > ~/kept.txt' });

    await proxy.cut();
    const [deleted, deleteMs] = await timed(() => call('DELETE', path));
    expect(deleted.status).toBe(503);
    expect(deleted.body).toEqual({ detail: expect.stringContaining('S3') });
    expect(deleteMs).toBeLessThan(ANSWER_BOUND_MS);
    const [created, createMs] = await timed(() => call('POST', '/sandboxes', { user_id: user }));
    expect(created.status).toBe(503);
    expect(created.body).toEqual({ detail: expect.stringContaining('S3') });
    expect(createMs).toBeLessThan(ANSWER_BOUND_MS);
    const failed = await call<WireSandbox & { last_error: string }>('GET', path);
    expect(failed.body.last_error).toContain('S3');
    // The stopped container still holds the home.
    expect(await sandboxContainers(user)).toHaveLength(1);

    await proxy.restore();
    expect((await call('DELETE', path)).status).toBe(204);
    expect(await sandboxContainers(user)).toEqual([]);
    const again = await create(user);
    const read = await call<ExecReply>('POST', `/sandboxes/${again.sandbox_id}/exec`, {
      command: 'cat ~/kept.txt',
    });
    expect(read.body.stdout).toBe('kept\n');
    expect((await call('DELETE', `/sandboxes/${again.sandbox_id}`)).status).toBe(204);
    expect(await sandboxContainers(user)).toEqual([]);
  });
});
