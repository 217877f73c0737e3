import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeRuntime, HOST_ID, serviceWith } from './fakes.js';

const IMAGE = 'matrx-sandbox:test';
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function eventually(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The services with a pool of `size`, its upkeep started and the pool full. */
async function withPool(size: number, runtime = new FakeRuntime()) {
  const parts = serviceWith(runtime, HOST_ID, { MATRX_WARM_POOL_SIZE: String(size) });
  parts.pool.start(60_000);
  closers.push(() => parts.pool.close());
  await eventually('the pool is full', () => parts.pool.stats().ready === size);
  return { runtime, ...parts };
}

const poolCreates = (runtime: FakeRuntime) =>
  runtime.specs.filter((spec) => spec.labels['matrx.pool'] === 'true');

describe('WarmPool', () => {
  it('fills to its size with started containers labelled as the pool, and no user', async () => {
    const { runtime, pool } = await withPool(2);
    expect(pool.stats()).toEqual({ target: 2, ready: 2 });
    const specs = poolCreates(runtime);
    expect(specs).toHaveLength(2);
    expect(specs[0]?.labels).toMatchObject({ 'matrx.pool': 'true', 'matrx.host_id': HOST_ID });
    expect(specs[0]?.labels['matrx.user_id']).toBeUndefined();
    expect(specs[0]?.name).toMatch(/^matrx-pool-[0-9a-f]{12}$/);
    expect(specs[0]?.env.USER_ID).toBeUndefined();
  });

  it('a create claims one: renamed, given its identity, and the pool is topped up', async () => {
    const { runtime, pool, service } = await withPool(2);
    const sandbox = await service.create('alice', { env: { GREETING: 'hi' } });
    expect(sandbox.status).toBe('ready');
    expect(runtime.calls).toContain('claim');
    const assigned = runtime.assigned.get(sandbox.containerId ?? '');
    expect(assigned?.identity).toMatchObject({
      sandboxId: sandbox.sandboxId,
      userId: 'alice',
      env: { GREETING: 'hi', SANDBOX_ID: sandbox.sandboxId, USER_ID: 'alice' },
    });
    expect(assigned?.limits).toBeNull();
    await eventually('the pool is topped up', () => pool.stats().ready === 2);
    expect(poolCreates(runtime)).toHaveLength(3);
  });

  it('cpu and memory below the pool containers are set on the claim', async () => {
    const { runtime, service } = await withPool(1);
    const sandbox = await service.create('alice', { cpu: 1, memory: '512m' });
    expect(runtime.assigned.get(sandbox.containerId ?? '')?.limits).toEqual({
      cpuLimit: 1,
      memoryLimitBytes: 512 * 1024 ** 2,
    });
  });

  it('a config the pool cannot serve, or an empty pool, starts a container of its own', async () => {
    const { runtime, service } = await withPool(1);
    await service.create('alice', { network: 'internet' });
    expect(runtime.calls).not.toContain('claim');
    await service.create('bob', {});
    const burst = await Promise.all([service.create('carol', {}), service.create('dan', {})]);
    expect(burst.map((sandbox) => sandbox.status)).toEqual(['ready', 'ready']);
  });

  it('never holds more than its size, whatever the claims', async () => {
    const { runtime, pool, service } = await withPool(2);
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((user) => service.create(user, {})));
    await eventually('the pool is full again', () => pool.stats().ready === 2);
    expect(runtime.pool.size).toBe(2);
  });

  it('a claim that loses its container to another starts a container of its own', async () => {
    const { runtime, service } = await withPool(1);
    runtime.pool.clear();
    const sandbox = await service.create('alice', {});
    expect(sandbox.status).toBe('ready');
    expect(runtime.calls).toContain('create');
    expect(runtime.assigned.size).toBe(0);
  });

  it('a rebuilt image replaces the waiting containers on the next upkeep', async () => {
    const runtime = new FakeRuntime();
    const { pool } = await withPool(2, runtime);
    const before = [...runtime.pool.keys()];
    runtime.imageIds.set(IMAGE, 'rebuilt');
    pool.start(60_000);
    await eventually('the pool is remade', () =>
      [...runtime.pool.keys()].every((name) => !before.includes(name)),
    );
    await eventually('the pool is full', () => pool.stats().ready === 2);
  });

  it('adopts running containers an earlier run left when made the same way, removes others', async () => {
    const runtime = new FakeRuntime();
    const first = await withPool(2, runtime);
    await first.pool.close();
    runtime.pool.set('matrx-pool-x', {
      containerId: 'container-x',
      name: 'matrx-pool-x',
      hostId: HOST_ID,
      configHash: 'made-otherwise',
      running: true,
    });
    runtime.running.add('container-x');
    const second = serviceWith(runtime, HOST_ID, { MATRX_WARM_POOL_SIZE: '2' });
    second.pool.start(60_000);
    closers.push(() => second.pool.close());
    await eventually('the pool is full', () => second.pool.stats().ready === 2);
    expect(poolCreates(runtime)).toHaveLength(2);
    expect(runtime.pool.has('matrx-pool-x')).toBe(false);
  });

  it('with a size of 0, what an earlier run left is removed', async () => {
    const runtime = new FakeRuntime();
    const first = await withPool(2, runtime);
    await first.pool.close();
    const { pool } = serviceWith(runtime, HOST_ID, { MATRX_WARM_POOL_SIZE: '0' });
    pool.start(60_000);
    closers.push(() => pool.close());
    await eventually('the pool is empty', () => runtime.pool.size === 0);
    expect(pool.stats()).toEqual({ target: 0, ready: 0 });
  });

  it('a claimed container whose identity was never written is removed by the memory registry', async () => {
    const { runtime, pool, reconcilerWith } = await withPool(1);
    const [name] = [...runtime.pool.keys()];
    await pool.close();
    expect(await runtime.claimPoolContainer(name ?? '', 'sbx-0123456789ab')).toBe(true);
    const summary = await reconcilerWith({ adoptOrphans: true }).runPass();
    expect(summary.actions).toEqual({ claim_interrupted: 1 });
    expect(runtime.containers.size).toBe(0);
  });
});
