import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import tar from 'tar-stream';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { docker } from '../support/docker.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';
import { until } from '../support/until.js';

/**
 * The warm pool on the real engine, with servers of this file's own (a host id of their own, so
 * no other server adopts their containers) and an image tag of its own, which the image-change
 * case rebuilds under the same name. One server serves most cases; a few restart it.
 */
const hostId = `it-pool-${randomBytes(3).toString('hex')}`;
const repo = `matrx-sandbox-pooltest-${randomBytes(3).toString('hex')}`;
const image = `${repo}:latest`;
const POOL_SIZE = 2;
let workDir: string;
let server: RunningServer | undefined;
const env = () => ({
  MATRX_HOST_ID: hostId,
  MATRX_SANDBOX_IMAGE: image,
  MATRX_DOCKER_NETWORK: 'none',
  MATRX_SHUTDOWN_TIMEOUT_SECONDS: '1',
  MATRX_RECONCILE_INTERVAL_SECONDS: '1',
  MATRX_MAX_SESSION_DURATION_SECONDS: '600',
  MATRX_WARM_POOL_SIZE: String(POOL_SIZE),
  MATRX_EMBEDDED_S3_DIR: join(workDir, 's3'),
});

const { call } = ownServer(() => server?.baseUrl);

async function start(extra: Record<string, string> = {}) {
  await server?.stop();
  server = await startServer({
    logFile: join(workDir, `server-${Date.now()}.log`),
    env: { ...env(), ...extra },
  });
  return server;
}

/** This host's containers: pool ones (claimed or not) and sandboxes started without the pool. */
async function hostContainers() {
  return docker.listContainers({ all: true, filters: { label: [`matrx.host_id=${hostId}`] } });
}

async function waitingPool() {
  return (await hostContainers()).filter(
    (c) => c.Labels['matrx.pool'] === 'true' && (c.Names[0] ?? '').startsWith('/matrx-pool-'),
  );
}

async function health() {
  return (await call<{ pool: { target: number; ready: number } }>('GET', '/health')).body;
}

async function poolFull(size = POOL_SIZE) {
  await until(`the pool holds ${size} ready containers`, async () => {
    const { pool } = await health();
    return pool.ready === size && (await waitingPool()).length === size;
  });
}

async function create(userId: string, config: Record<string, unknown> = {}) {
  const created = await call<WireSandbox>('POST', '/sandboxes', { user_id: userId, config });
  expect(created.status).toBe(201);
  expect(created.body.status).toBe('ready');
  return created.body;
}

function run(id: string, command: string, extra: Record<string, unknown> = {}) {
  return call<ExecReply>('POST', `/sandboxes/${id}/exec`, { command, ...extra });
}

async function fromPool(containerId: string | null): Promise<boolean> {
  const info = await docker.getContainer(containerId ?? '').inspect();
  return info.Config.Labels['matrx.pool'] === 'true';
}

/** The same image under the same name with a new id, as a rebuild leaves it. */
async function rebuildImage(): Promise<void> {
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile' }, `FROM ${image}\nLABEL matrx.pooltest.build="${Date.now()}"\n`);
  pack.finalize();
  const stream = await docker.buildImage(Readable.from(pack), { t: image });
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(null))),
  );
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'matrx-pool-'));
  await docker.getImage('matrx-sandbox:latest').tag({ repo, tag: 'latest' });
  await start();
  await poolFull();
});

afterAll(async () => {
  await server?.kill();
  for (const container of await hostContainers()) {
    await docker
      .getContainer(container.Id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  await docker
    .getImage(image)
    .remove({ force: true })
    .catch(() => undefined);
});

describe('the warm pool', () => {
  it('a create claims a pool container: the sandbox has its id, user and environment', async () => {
    const user = testUser('pool-claim');
    const before = (await waitingPool()).map((c) => c.Id);
    const sandbox = await create(user, { env: { GREETING: 'hi there' }, cpu: 1, memory: '512m' });
    expect(before).toContain(sandbox.container_id);
    const info = await docker.getContainer(sandbox.container_id ?? '').inspect();
    expect(info.Name).toBe(`/${sandbox.sandbox_id}`);
    expect(info.HostConfig).toMatchObject({ NanoCpus: 1e9, Memory: 512 * 1024 ** 2 });

    const ran = await run(
      sandbox.sandbox_id,
      'echo "$SANDBOX_ID $USER_ID $COLD_PATH $HOT_PATH $GREETING"; id -un',
    );
    expect(ran.body.stdout).toBe(
      `${sandbox.sandbox_id} ${user} /data/cold /home/agent hi there\nagent\n`,
    );
    const asRoot = await run(sandbox.sandbox_id, 'echo "$USER_ID"', { user: 'root' });
    expect(asRoot.body.stdout).toBe(`${user}\n`);
    const login = await run(sandbox.sandbox_id, 'env -i bash -lc \'echo "$USER_ID $GREETING"\'');
    expect(login.body.stdout).toBe(`${user} hi there\n`);
    const perCommand = await run(sandbox.sandbox_id, 'echo "$GREETING"', {
      env: { GREETING: 'override' },
    });
    expect(perCommand.body.stdout).toBe('override\n');
    // A background process too: the pool container's channels opened before its claim.
    const processes = `/sandboxes/${sandbox.sandbox_id}/processes`;
    const started = await call<{ process_id: string }>('POST', processes, {
      command: 'echo "$USER_ID $GREETING"',
    });
    expect(started.status).toBe(201);
    const read = await call<{ stdout: string }>(
      'GET',
      `${processes}/${started.body.process_id}/output?wait=5`,
    );
    expect(read.body.stdout).toBe(`${user} hi there\n`);

    const listed = await call<{ sandboxes: WireSandbox[] }>('GET', '/sandboxes');
    expect(listed.body.sandboxes.map((s) => s.container_id)).toEqual([sandbox.container_id]);
    await poolFull();
  });

  it('a returning user finds their home in a pool container', async () => {
    const user = testUser('pool-home');
    const first = await create(user);
    expect(await fromPool(first.container_id)).toBe(true);
    await run(first.sandbox_id, 'echo kept > note.txt');
    expect((await call('DELETE', `/sandboxes/${first.sandbox_id}`)).status).toBe(204);
    await poolFull();
    const second = await create(user);
    expect(await fromPool(second.container_id)).toBe(true);
    expect((await run(second.sandbox_id, 'cat note.txt')).body.stdout).toBe('kept\n');
    expect((await call('DELETE', `/sandboxes/${second.sandbox_id}`)).status).toBe(204);
  });

  it('a burst past the pool: every create is ready, the pool refills and never passes its size', async () => {
    await poolFull();
    let most = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        most = Math.max(most, (await waitingPool()).length);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const users = [1, 2, 3, 4].map((n) => testUser(`pool-burst-${n}`));
    const sandboxes = await Promise.all(users.map((user) => create(user)));
    const pooled = await Promise.all(sandboxes.map((s) => fromPool(s.container_id)));
    expect(pooled.filter(Boolean).length).toBeGreaterThanOrEqual(POOL_SIZE);
    expect(pooled.filter(Boolean).length).toBeLessThan(sandboxes.length);
    await poolFull();
    watching = false;
    await watch;
    expect(most).toBeLessThanOrEqual(POOL_SIZE);
    for (const sandbox of sandboxes) {
      expect((await run(sandbox.sandbox_id, 'echo "$USER_ID"')).body.stdout).toBe(
        `${sandbox.user_id}\n`,
      );
    }
  });

  it('a restart keeps the waiting containers, and adopts a claimed sandbox with its user', async () => {
    const user = testUser('pool-restart');
    const sandbox = await create(user, { env: { GREETING: 'still here' } });
    await poolFull();
    const waiting = (await waitingPool()).map((c) => c.Id).sort();
    await start();
    await poolFull();
    expect((await waitingPool()).map((c) => c.Id).sort()).toEqual(waiting);
    const got = await call<WireSandbox>('GET', `/sandboxes/${sandbox.sandbox_id}`);
    expect(got.body).toMatchObject({ user_id: user, status: 'running' });
    const ran = await run(sandbox.sandbox_id, 'echo "$USER_ID $GREETING"');
    expect(ran.body.stdout).toBe(`${user} still here\n`);
  });

  it('a rebuilt image replaces the waiting containers', async () => {
    await poolFull();
    const old = (await waitingPool()).map((c) => c.Id);
    await rebuildImage();
    const imageId = (await docker.getImage(image).inspect()).Id;
    await until(
      'the pool is made of the new image',
      async () => {
        const waiting = await waitingPool();
        return (
          waiting.length === POOL_SIZE &&
          waiting.every((c) => c.ImageID === imageId && !old.includes(c.Id))
        );
      },
      { timeoutMs: 60_000 },
    );
  });

  it('a crash mid-claim leaves nothing behind: the next start removes the half-claimed container', async () => {
    await start({ MATRX_TEST_CLAIM_PAUSE_MS: '30000' });
    await poolFull();
    const user = testUser('pool-crash');
    const named = (c: { Id: string; Names: string[] }) => `${c.Id} ${c.Names[0] ?? ''}`;
    const claimedBefore = new Set((await hostContainers()).map(named));
    const pending = call('POST', '/sandboxes', { user_id: user }).catch(() => undefined);
    let halfClaimed = '';
    await until('a pool container is renamed for the sandbox', async () => {
      const claimed = (await hostContainers()).find(
        (c) =>
          !claimedBefore.has(named(c)) &&
          c.Labels['matrx.pool'] === 'true' &&
          /^\/sbx-/.test(c.Names[0] ?? ''),
      );
      halfClaimed = claimed?.Id ?? '';
      return Boolean(claimed);
    });
    await server?.kill();
    await pending;
    server = undefined;
    await start();
    await until('the half-claimed container is gone', async () =>
      (await hostContainers()).every((c) => c.Id !== halfClaimed),
    );
    await poolFull();
    const listed = await call<{ sandboxes: WireSandbox[] }>('GET', `/sandboxes?user_id=${user}`);
    expect(listed.body.sandboxes).toEqual([]);
  });

  it('with a size of 0 the pool is emptied and a create starts its own container', async () => {
    await start({ MATRX_WARM_POOL_SIZE: '0' });
    await until('no pool container is left', async () => (await waitingPool()).length === 0);
    expect((await health()).pool).toEqual({ target: 0, ready: 0 });
    const sandbox = await create(testUser('pool-zero'));
    expect(await fromPool(sandbox.container_id)).toBe(false);
  });
});
