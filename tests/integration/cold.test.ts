import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseMountInfo } from '../../lib/adapters/fuse/mountTable.js';
import {
  EMBEDDED_BUCKET,
  embeddedS3Client,
  startEmbeddedS3,
  type EmbeddedS3,
} from '../../lib/embeddedS3.js';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { docker } from '../support/docker.js';
import { dependencyMissing } from '../support/runtimes.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';
import { until } from '../support/until.js';

/**
 * The cold tier on the real engine and a real S3 server (this file's own, behind a proxy the test
 * can cut): /data/cold is the user's prefix, shared by the user's sandboxes, kept in S3, hidden
 * from other users, with nothing of S3 inside the sandbox.
 */
let dir: string;
let s3: EmbeddedS3;
let proxy: TcpProxy;
let client: S3Client;
let server: RunningServer;
let coldRoot: string;
let unavailable = '';
const HOST_ID = `it-cold-${process.pid}`;

const { call, create } = ownServer(() => server?.baseUrl);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'matrx-cold-'));
  s3 = await startEmbeddedS3(join(dir, 's3'), 0);
  client = embeddedS3Client(s3);
  proxy = await startTcpProxy(Number(new URL(s3.endpoint).port));
  coldRoot = join(dir, 'cold');
  server = await startColdServer('server.log');
  const health = await call<{ cold: { available: boolean; reason?: string } }>('GET', '/health');
  if (!health.body.cold.available) {
    unavailable = health.body.cold.reason ?? 'no reason given';
    dependencyMissing([`the cold tier is unavailable here: ${unavailable}`], 'cold.test.ts');
  }
}, 120_000);

/** A server of this file's S3 server (behind the proxy) and cold-tier root. */
function startColdServer(logName: string): Promise<RunningServer> {
  return startServer({
    logFile: join(dir, logName),
    env: {
      ...s3.env,
      AWS_ENDPOINT_URL_S3: proxy.url,
      MATRX_COLD_ROOT: coldRoot,
      MATRX_HOST_ID: HOST_ID,
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_CONTAINER_MEMORY_LIMIT: '512m',
      MATRX_CONTAINER_CPU_LIMIT: '1',
      MATRX_SHUTDOWN_TIMEOUT_SECONDS: '1',
      MATRX_WARM_POOL_SIZE: '1',
      MATRX_RECONCILE_INTERVAL_SECONDS: '2',
      MATRX_RECONCILE_GRACE_SECONDS: '0',
    },
  });
}

afterAll(async () => {
  await server?.stop();
  // The pool's container is left for a next start of this host (by design): there is none.
  const left = await docker.listContainers({
    all: true,
    filters: { label: [`matrx.host_id=${HOST_ID}`] },
  });
  for (const container of left) await docker.getContainer(container.Id).remove({ force: true });
  await proxy?.close();
  await s3?.close();
  client?.destroy();
});

const run = async (sandboxId: string, command: string, extra: Record<string, unknown> = {}) => {
  const reply = await call<ExecReply>('POST', `/sandboxes/${sandboxId}/exec`, {
    command,
    ...extra,
  });
  expect(reply.status).toBe(200);
  return reply.body;
};

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function objectBytes(key: string): Promise<Buffer> {
  const got = await client.send(new GetObjectCommand({ Bucket: EMBEDDED_BUCKET, Key: key }));
  return Buffer.from(
    await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

async function objectSize(key: string): Promise<number | null> {
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: EMBEDDED_BUCKET, Key: key }));
    return head.ContentLength ?? 0;
  } catch {
    return null;
  }
}

/** The cold tier's mounts on the host now, by where they are. */
function hostMounts(): string[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .map((entry) => entry.mountPoint)
    .filter((path) => path.startsWith(`${coldRoot}/`));
}

async function coldSandbox(userId: string): Promise<WireSandbox & { cold_tier: string }> {
  const sandbox = (await create(userId)) as WireSandbox & { cold_tier: string };
  expect(sandbox.cold_tier).toBe('mounted');
  return sandbox;
}

const remove = async (sandboxId: string) =>
  expect((await call('DELETE', `/sandboxes/${sandboxId}`)).status).toBe(204);

/** A test that needs the cold tier: skipped (after the banner) where the host cannot mount. */
function coldIt(name: string, test: () => Promise<void>, timeoutMs: number): void {
  it(
    name,
    async () => {
      if (!unavailable) await test();
    },
    timeoutMs,
  );
}

describe('the cold tier', () => {
  const user = testUser('cold');

  coldIt(
    'a claimed pool container gets it too',
    async () => {
      await until(
        'the pool has a container',
        async () => (await call<{ pool: { ready: number } }>('GET', '/health')).body.pool.ready > 0,
        { timeoutMs: 60_000 },
      );
      const claimed = await coldSandbox(testUser('coldpool'));
      const listed = await run(claimed.sandbox_id, 'touch /data/cold/from-pool && ls /data/cold');
      expect(listed.stdout).toContain('from-pool');
      await remove(claimed.sandbox_id);
    },
    90_000,
  );

  coldIt(
    "is the user's prefix: in S3, in a concurrent sandbox, in the next one, and in no other user's",
    async () => {
      const [first, second] = await Promise.all([coldSandbox(user), coldSandbox(user)]);
      const wrote = await run(
        first.sandbox_id,
        'head -c 3145728 /dev/urandom > /data/cold/data.bin && stat -c "%U %a %s" /data/cold/data.bin',
      );
      expect(wrote).toMatchObject({ exit_code: 0, stdout: 'agent 644 3145728\n' });
      const expected = await objectBytes(`users/${user}/cold/data.bin`);
      expect(expected.length).toBe(3145728);
      const seen = await run(second.sandbox_id, 'sha256sum < /data/cold/data.bin');
      expect(seen.stdout.split(' ')[0]).toBe(sha256(expected));

      const stranger = await coldSandbox(testUser('coldother'));
      const theirs = await run(stranger.sandbox_id, 'ls -A /data/cold; ls -A /data/cold/.. ');
      expect(theirs.stdout).not.toContain('data.bin');
      await remove(stranger.sandbox_id);

      await Promise.all([remove(first.sandbox_id), remove(second.sandbox_id)]);
      expect(hostMounts().filter((path) => path.endsWith(`/users/${user}`))).toEqual([]);
      const next = await coldSandbox(user);
      const again = await run(next.sandbox_id, 'sha256sum < /data/cold/data.bin');
      expect(again.stdout.split(' ')[0]).toBe(sha256(expected));
      await remove(next.sandbox_id);
    },
    180_000,
  );

  coldIt(
    'nothing of S3 is inside: no credential, capability, device or endpoint',
    async () => {
      const sandbox = await coldSandbox(user);
      const look =
        'grep -E "^Cap(Eff|Bnd)" /proc/self/status; env; grep " /data/cold " /proc/self/mountinfo; ls /dev';
      for (const as of ['agent', 'root']) {
        const seen = await run(sandbox.sandbox_id, look, { user: as });
        expect(seen.exit_code).toBe(0);
        const text = seen.stdout;
        expect(text).toContain('matrx-cold');
        for (const secret of [s3.env.AWS_SECRET_ACCESS_KEY, proxy.url, s3.endpoint, 'AWS_']) {
          expect(text).not.toContain(secret);
        }
        expect(text).not.toMatch(/\bfuse\b\n/);
        // CAP_SYS_ADMIN is bit 21: never in the effective or the bounding set.
        for (const line of text.split('\n').filter((l) => l.startsWith('Cap'))) {
          const mask = BigInt(`0x${line.split(/\s+/)[1]}`);
          expect(mask & (1n << 21n)).toBe(0n);
        }
      }
      await remove(sandbox.sandbox_id);
    },
    90_000,
  );

  coldIt(
    'writes reach S3 before the sandbox is stopped, a delete through the API shows at once, an append fails loudly',
    async () => {
      const sandbox = await coldSandbox(user);
      await run(sandbox.sandbox_id, 'echo old > /data/cold/gone.txt');
      const emptied = await call('DELETE', `/users/${user}/storage?tier=cold`);
      expect(emptied.status).toBe(200);
      const after = await run(sandbox.sandbox_id, 'ls -A /data/cold');
      expect(after.stdout).not.toContain('gone.txt');

      await run(sandbox.sandbox_id, 'echo one > /data/cold/log.txt');
      const appended = await run(sandbox.sandbox_id, 'echo two >> /data/cold/log.txt');
      expect(appended.exit_code).not.toBe(0);
      expect((await objectBytes(`users/${user}/cold/log.txt`)).toString()).toBe('one\n');

      const started = await call('POST', `/sandboxes/${sandbox.sandbox_id}/processes`, {
        command:
          'for i in $(seq 1 40); do head -c 262144 /dev/zero; sleep 0.05; done > /data/cold/bg.bin',
      });
      expect(started.status).toBe(201);
      await until('the writer has begun', async () =>
        (await run(sandbox.sandbox_id, 'ls /data/cold')).stdout.includes('bg.bin'),
      );
      await remove(sandbox.sandbox_id);
      // Stopped: what the writer had written when it was stopped is in S3 already.
      const size = await objectSize(`users/${user}/cold/bg.bin`);
      expect(size).not.toBeNull();
      expect((size ?? 0) % 262144).toBe(0);
    },
    120_000,
  );

  coldIt(
    'S3 down while writing is an error the writer sees',
    async () => {
      const sandbox = await coldSandbox(user);
      const path = `/sandboxes/${sandbox.sandbox_id}/processes`;
      const started = await call<{ process_id: string }>('POST', path, {
        command:
          'set -e; for i in $(seq 1 200); do head -c 262144 /dev/zero; sleep 0.05; done > /data/cold/outage.bin',
      });
      expect(started.status).toBe(201);
      const processPath = `${path}/${started.body.process_id}`;
      await until('the writer has begun', async () =>
        (await run(sandbox.sandbox_id, 'ls /data/cold')).stdout.includes('outage.bin'),
      );
      await proxy.cut();
      try {
        await until(
          'the writer ended',
          async () =>
            (await call<{ status: string }>('GET', processPath)).body.status !== 'running',
          { timeoutMs: 180_000, intervalMs: 500 },
        );
        const ended = await call<{ exit_code: number }>('GET', processPath);
        const output = await call<{ stderr: string }>('GET', `${processPath}/output`);
        // A write or the close fails: the writer knows the file is not kept.
        expect(ended.body.exit_code).not.toBe(0);
        expect(output.body.stderr).toMatch(/error/i);
      } finally {
        await proxy.restore();
      }
      const after = await run(sandbox.sandbox_id, 'echo back > /data/cold/after.txt && echo ok');
      expect(after.stdout).toBe('ok\n');
      expect((await objectBytes(`users/${user}/cold/after.txt`)).toString()).toBe('back\n');
      await remove(sandbox.sandbox_id);
    },
    300_000,
  );

  coldIt(
    'a crash leaves mounts the reconciler removes, and a dead mount is bound again',
    async () => {
      const crashed = await coldSandbox(user);
      const container = docker.getContainer(crashed.container_id ?? '');
      const slot = (await container.inspect()).Mounts.find((m) => m.Destination === '/data/cold');
      expect(slot?.Source.startsWith(`${coldRoot}/slots/`)).toBe(true);
      // The container goes without an end (the API never hears of it): its slot stays bound.
      await container.remove({ force: true });
      expect(hostMounts()).toContain(slot?.Source);
      await until(
        'the reconciler released the slot and the user',
        () => hostMounts().every((path) => path !== slot?.Source && !path.endsWith(`/${user}`)),
        { timeoutMs: 30_000 },
      );

      const living = await coldSandbox(user);
      await run(living.sandbox_id, 'echo kept > /data/cold/kept.txt');
      const pid = Number(readFileSync(join(coldRoot, 'rclone.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
      await until(
        'the sandbox sees its files again',
        async () => (await run(living.sandbox_id, 'cat /data/cold/kept.txt')).stdout === 'kept\n',
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      await remove(living.sandbox_id);
    },
    120_000,
  );

  coldIt(
    'a service that crashed after its rclone died starts again with a cold tier',
    async () => {
      const before = await coldSandbox(user);
      await run(before.sandbox_id, 'echo again > /data/cold/again.txt');
      await remove(before.sandbox_id);
      // The service dies first (its rclone, detached, lives on), then rclone: the bucket's mount
      // is left dead (its reads fail with ENOTCONN), and nobody unmounts it.
      await server.kill();
      process.kill(Number(readFileSync(join(coldRoot, 'rclone.pid'), 'utf8')), 'SIGKILL');
      await until('the bucket mount is dead', () => {
        try {
          readdirSync(join(coldRoot, 'bucket'));
          return false;
        } catch (error) {
          return (error as NodeJS.ErrnoException).code === 'ENOTCONN';
        }
      });
      server = await startColdServer('server-after-crash.log');
      const health = await call<{ cold: { available: boolean } }>('GET', '/health');
      expect(health.body.cold.available).toBe(true);
      const after = await coldSandbox(user);
      expect((await run(after.sandbox_id, 'cat /data/cold/again.txt')).stdout).toBe('again\n');
      await remove(after.sandbox_id);
    },
    180_000,
  );
});
