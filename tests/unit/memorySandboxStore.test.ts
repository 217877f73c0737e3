import { describe, expect, it } from '@jest/globals';
import { MemorySandboxStore } from '../../lib/adapters/memory/memorySandboxStore.js';
import { ALLOWED_TRANSITIONS, canTransition, newSandbox } from '../../lib/domain/sandbox.js';
import { ConflictError } from '../../lib/errors.js';

function storeAt(clock: { now: number }, maxStopped = 100) {
  return new MemorySandboxStore({
    stoppedRetentionMs: 60_000,
    maxStopped,
    now: () => new Date(clock.now),
  });
}

describe('lifecycle table', () => {
  it('ends in stopped and expired, which go nowhere', () => {
    expect(ALLOWED_TRANSITIONS.stopped).toEqual([]);
    expect(ALLOWED_TRANSITIONS.expired).toEqual([]);
    expect(canTransition('creating', 'starting')).toBe(true);
    expect(canTransition('stopped', 'running')).toBe(false);
    expect(canTransition('running', 'creating')).toBe(false);
  });
});

describe('MemorySandboxStore', () => {
  it('saves, gets, lists by user, deletes', async () => {
    const store = storeAt({ now: Date.now() });
    const a = newSandbox('alice', {});
    const b = newSandbox('bob', {});
    await store.save(a);
    await store.save(b);
    expect((await store.get(a.sandboxId))?.userId).toBe('alice');
    expect((await store.list('bob')).map((s) => s.sandboxId)).toEqual([b.sandboxId]);
    expect(await store.list()).toHaveLength(2);
    await store.delete(a.sandboxId);
    expect(await store.get(a.sandboxId)).toBeNull();
  });

  it('returns copies, so a caller cannot change the registry by accident', async () => {
    const store = storeAt({ now: Date.now() });
    const sandbox = newSandbox('alice', {});
    await store.save(sandbox);
    const copy = await store.get(sandbox.sandboxId);
    if (copy) copy.status = 'running';
    expect((await store.get(sandbox.sandboxId))?.status).toBe('creating');
  });

  it('moves status only along the lifecycle table', async () => {
    const store = storeAt({ now: Date.now() });
    const sandbox = newSandbox('alice', {});
    await store.save(sandbox);
    const moved = await store.updateStatus(sandbox.sandboxId, {
      status: 'starting',
      containerId: 'c1',
    });
    expect(moved).toMatchObject({ status: 'starting', containerId: 'c1' });
    await expect(store.updateStatus(sandbox.sandboxId, { status: 'stopped' })).rejects.toThrow(
      ConflictError,
    );
    expect(await store.updateStatus('sbx-000000000000', { status: 'ready' })).toBeNull();
  });

  it('forgets stopped sandboxes after the retention time, and keeps live ones', async () => {
    const clock = { now: Date.now() };
    const store = storeAt(clock);
    const live = newSandbox('alice', {});
    const done = newSandbox('alice', {});
    await store.save(live);
    await store.save(done);
    await store.updateStatus(done.sandboxId, { status: 'shutting_down' });
    await store.updateStatus(done.sandboxId, { status: 'stopped' });
    clock.now += 30_000;
    expect(await store.list()).toHaveLength(2);
    clock.now += 31_000;
    expect((await store.list()).map((s) => s.sandboxId)).toEqual([live.sandboxId]);
  });

  it('keeps at most maxStopped stopped sandboxes, the newest', async () => {
    const clock = { now: Date.now() };
    const store = storeAt(clock, 2);
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const sandbox = newSandbox('alice', {});
      ids.push(sandbox.sandboxId);
      await store.save(sandbox);
      await store.updateStatus(sandbox.sandboxId, { status: 'shutting_down' });
      clock.now += 1;
      await store.updateStatus(sandbox.sandboxId, { status: 'stopped' });
    }
    expect((await store.list()).map((s) => s.sandboxId).sort()).toEqual(ids.slice(3).sort());
  });
});
