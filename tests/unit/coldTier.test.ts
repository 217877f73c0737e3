import { describe, expect, it, jest } from '@jest/globals';
import { UnavailableError } from '../../lib/errors.js';
import type { ColdMounts, ColdSweep } from '../../lib/ports.js';
import { FakeRuntime, serviceWith } from './fakes.js';

/** Mounts in memory: what was asked of them goes into the runtime's call list, in order. */
class FakeColdMounts implements ColdMounts {
  reason: string | null = null;
  failAttach = false;
  swept: ColdSweep = { slots: 0, users: 0, repaired: 0 };
  inUseSeen: ReadonlySet<string> | undefined;

  constructor(private readonly calls: string[]) {}

  async unavailableReason() {
    return this.reason;
  }
  slotPath(slot: string) {
    return `/cold/slots/${slot}`;
  }
  async attach(userId: string, slot: string) {
    this.calls.push(`attach ${userId} ${slot}`);
    if (this.failAttach) throw new Error('rclone is gone');
  }
  async detach(slot: string) {
    this.calls.push(`detach ${slot}`);
  }
  async refresh() {
    this.calls.push('refresh');
  }
  async sweep(slotsInUse: () => Promise<ReadonlySet<string>>) {
    this.inUseSeen = await slotsInUse();
    return this.swept;
  }
  async mountedUsers() {
    return 1;
  }
  async close() {}
}

function withCold() {
  const runtime = new FakeRuntime();
  const mounts = new FakeColdMounts(runtime.calls);
  return { runtime, mounts, ...serviceWith(runtime, undefined, {}, mounts) };
}

describe('the cold tier in the sandbox lifecycle', () => {
  it("binds a slot at create, puts the user's prefix there before the start, and says mounted", async () => {
    const { runtime, service } = withCold();
    const sandbox = await service.create('alice', {});
    expect(runtime.specs[0]?.coldSlot).toBe(`/cold/slots/${sandbox.sandboxId}`);
    expect(runtime.calls).toEqual(['create', `attach alice ${sandbox.sandboxId}`, 'start']);
    expect(sandbox).toMatchObject({ status: 'ready', coldTier: 'mounted' });
  });

  it('a failed mount leaves a ready sandbox that says its cold tier is unavailable', async () => {
    const { mounts, service } = withCold();
    mounts.failAttach = true;
    const sandbox = await service.create('alice', {});
    expect(sandbox).toMatchObject({ status: 'ready', coldTier: 'unavailable' });
  });

  it('a host that cannot mount binds no slot and mounts nothing; /health says why', async () => {
    const { runtime, mounts, service, health } = withCold();
    mounts.reason = 'rclone is not installed';
    const sandbox = await service.create('alice', {});
    expect(runtime.specs[0]?.coldSlot).toBeUndefined();
    expect(runtime.calls).toEqual(['create', 'start']);
    expect(sandbox.coldTier).toBe('unavailable');
    expect((await health.check()).cold).toEqual({
      available: false,
      reason: 'rclone is not installed',
      mountedUsers: 0,
    });
  });

  it('takes the prefix out after the container stopped, before the home is saved and it is removed', async () => {
    const { runtime, service } = withCold();
    const sandbox = await service.create('alice', {});
    await service.destroy(sandbox.sandboxId, true);
    const after = runtime.calls.slice(runtime.calls.indexOf('start') + 1);
    expect(after).toEqual(['stop', `detach ${sandbox.sandboxId}`, 'remove']);
  });

  it('a reconcile pass sweeps with the slots of the containers there are, and counts what it did', async () => {
    const { mounts, service, reconcilerWith } = withCold();
    const sandbox = await service.create('alice', {});
    mounts.swept = { slots: 2, users: 1, repaired: 0 };
    const summary = await reconcilerWith().runPass();
    expect(mounts.inUseSeen).toEqual(new Set([`/cold/slots/${sandbox.sandboxId}`]));
    expect(summary.actions).toMatchObject({ cold_slot_released: 2, cold_user_released: 1 });
    expect(summary.actions).not.toHaveProperty('cold_repaired');
  });

  it('a sandbox adopted back from its container (memory registry restarted) says its cold tier is mounted', async () => {
    const { service, store, reconcilerWith } = withCold();
    const sandbox = await service.create('alice', {});
    await store.delete(sandbox.sandboxId);
    await reconcilerWith({ adoptOrphans: true }).runPass();
    expect(await store.get(sandbox.sandboxId)).toMatchObject({
      status: 'running',
      coldTier: 'mounted',
    });
  });

  it('a pool claim whose registry write fails empties the slot of the unclaimed container', async () => {
    const runtime = new FakeRuntime();
    const mounts = new FakeColdMounts(runtime.calls);
    const parts = serviceWith(runtime, undefined, { MATRX_WARM_POOL_SIZE: '1' }, mounts);
    parts.pool.start(60_000);
    try {
      await until(() => parts.pool.stats().ready === 1);
      jest
        .spyOn(parts.store, 'save')
        .mockRejectedValueOnce(new UnavailableError('postgres', 'the registry is down'));
      await expect(parts.service.create('alice', {})).rejects.toThrow(UnavailableError);
      const attach = runtime.calls.findIndex((call) => call.startsWith('attach alice matrx-pool-'));
      const slot = runtime.calls[attach]?.split(' ')[2];
      expect(runtime.calls.slice(attach + 1)).toContain(`detach ${slot}`);
    } finally {
      await parts.pool.close();
    }
  });

  it('without a bucket there is nothing to mount, and /health says so', async () => {
    const runtime = new FakeRuntime();
    const { service, health } = serviceWith(runtime);
    expect((await service.create('alice', {})).coldTier).toBe('unavailable');
    expect((await health.check()).cold.reason).toMatch(/no S3 bucket/);
  });
});

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('the pool never filled');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
