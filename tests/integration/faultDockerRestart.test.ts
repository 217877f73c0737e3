import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startEmbeddedS3, type EmbeddedS3 } from '../../lib/embeddedS3.js';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { docker } from '../support/docker.js';
import { dependencyMissing } from '../support/runtimes.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';
import {
  startThrowawayDocker,
  throwawayDockerUnavailable,
  type ThrowawayDocker,
} from '../support/throwawayDocker.js';
import { until } from '../support/until.js';

/**
 * The Docker engine restarted while a sandbox runs. Never the shared engine: a dockerd of this
 * suite's own, with the sandbox image loaded into it (the one `npm run image` builds, which every
 * run has), and an API of its own pointed at it.
 * While the engine is down every request that needs it answers 503 naming Docker within
 * ANSWER_BOUND_MS; once it is back (its containers stopped with it) the reconciler ends the
 * sandbox with its home saved, and no container is left.
 */
const IMAGE = 'matrx-sandbox:latest';
const ANSWER_BOUND_MS = 10_000;
const CONVERGES_WITHIN_MS = 60_000;

const unavailable = throwawayDockerUnavailable();
if (unavailable) {
  dependencyMissing([`The Docker restart test needs a second dockerd: ${unavailable}.`], 'It is');
}

let engine: ThrowawayDocker | undefined;
let s3: EmbeddedS3 | undefined;
let server: RunningServer | undefined;

(unavailable ? describe.skip : describe)('the Docker engine restarted', () => {
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'matrx-engine-'));
    engine = await startThrowawayDocker(join(dir, 'engine'));
    const image = await docker.getImage(IMAGE).get();
    await engine.client.loadImage(image).then(
      (stream) =>
        new Promise((resolve, reject) => {
          stream.on('end', resolve).on('error', reject).resume();
        }),
    );
    s3 = await startEmbeddedS3(join(dir, 's3'), 0);
    server = await startServer({
      // Production mode: the image is taken as it is, never rebuilt on this engine.
      mode: 'serve',
      logFile: join(dir, 'server.log'),
      env: {
        ...s3.env,
        DOCKER_HOST: engine.host,
        // The engine runs in a mount namespace of its own: the host's cold-tier binds never reach it.
        MATRX_COLD_TIER: 'off',
        MATRX_SANDBOX_IMAGE: IMAGE,
        MATRX_HOST_ID: `it-engine-${randomBytes(3).toString('hex')}`,
        MATRX_DOCKER_NETWORK: 'none',
        MATRX_CONTAINER_MEMORY_LIMIT: '512m',
        MATRX_CONTAINER_CPU_LIMIT: '1',
        MATRX_SHUTDOWN_TIMEOUT_SECONDS: '1',
        MATRX_RECONCILE_INTERVAL_SECONDS: '1',
        MATRX_RECONCILE_GRACE_SECONDS: '0',
        // An end that failed while the engine was down is retried once it counts as stuck.
        MATRX_RECONCILE_STUCK_SECONDS: '5',
      },
    });
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await engine?.destroy();
    await s3?.close();
  });

  const { call, create } = ownServer(() => server?.baseUrl);

  it('requests meanwhile are 503 naming Docker; after it the sandbox ends with its home saved', async () => {
    const user = testUser('engine');
    const sandbox = await create(user);
    const path = `/sandboxes/${sandbox.sandbox_id}`;
    await call('POST', `${path}/exec`, { command: 'echo kept > ~/kept.txt' });

    await engine?.stop();
    // The sandbox itself may already be ending (a pass saw its container stop): then a 409.
    const started = Date.now();
    const exec = await call('POST', `${path}/exec`, { command: 'true' });
    expect(Date.now() - started).toBeLessThan(ANSWER_BOUND_MS);
    if (exec.status === 409)
      expect(exec.body).toEqual({ detail: expect.stringContaining('not running') });
    else
      expect([exec.status, exec.body]).toEqual([
        503,
        { detail: expect.stringContaining('Docker') },
      ]);
    const createdAt = Date.now();
    const created = await call('POST', '/sandboxes', { user_id: user });
    expect(Date.now() - createdAt).toBeLessThan(ANSWER_BOUND_MS);
    expect([created.status, created.body]).toEqual([
      503,
      { detail: expect.stringContaining('Docker') },
    ]);

    await engine?.start();
    await until(
      'the reconciler ended the sandbox',
      async () => {
        const got = await call<WireSandbox>('GET', path);
        return ['stopped', 'failed'].includes(got.body.status);
      },
      { timeoutMs: CONVERGES_WITHIN_MS },
    );
    const left = await engine?.client.listContainers({ all: true });
    expect(left).toEqual([]);
    const again = await create(user);
    const read = await call<ExecReply>('POST', `/sandboxes/${again.sandbox_id}/exec`, {
      command: 'cat ~/kept.txt',
    });
    expect(read.body.stdout).toBe('kept\n');
    expect((await call('DELETE', `/sandboxes/${again.sandbox_id}`)).status).toBe(204);
  }, 180_000);
});
