import { describe, expect, it } from '@jest/globals';
import { MemorySandboxStore } from '../../lib/adapters/memory/memorySandboxStore.js';
import { ALLOWED_TRANSITIONS, canTransition, newSandbox } from '../../lib/domain/sandbox.js';

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
  it('forgets stopped sandboxes after the retention time, and keeps live ones', async () => {
    const clock = { now: Date.now() };
    const store = storeAt(clock);
    const live = newSandbox('alice', {}, 'host-a');
    const done = newSandbox('alice', {}, 'host-a');
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
      const sandbox = newSandbox('alice', {}, 'host-a');
      ids.push(sandbox.sandboxId);
      await store.save(sandbox);
      await store.updateStatus(sandbox.sandboxId, { status: 'shutting_down' });
      clock.now += 1;
      await store.updateStatus(sandbox.sandboxId, { status: 'stopped' });
    }
    expect((await store.list()).map((s) => s.sandboxId).sort()).toEqual(ids.slice(3).sort());
  });
});
