import { describe, expect, it } from '@jest/globals';
import { newSandbox, type Sandbox } from '../../lib/domain/sandbox.js';
import { ConflictError, UnavailableError } from '../../lib/errors.js';
import type { SandboxStore } from '../../lib/ports.js';
import { FakeRuntime, HOST_ID, serviceWith, withReadySandbox } from './fakes.js';

const HOUR = 3_600_000;

/** Moves a row's clock back, as if it had been made (and last changed) `ms` ago. */
async function age(store: SandboxStore, sandboxId: string, ms: number) {
  const sandbox = await store.get(sandboxId);
  if (!sandbox) throw new Error('no such sandbox');
  const back = (date: Date) => new Date(date.getTime() - ms);
  await store.save({
    ...sandbox,
    createdAt: back(sandbox.createdAt),
    updatedAt: back(sandbox.updatedAt),
    expiresAt: back(sandbox.expiresAt),
    lastActivityAt: back(sandbox.lastActivityAt),
  });
}

/** Alice's sandboxes, one per config, on one fake runtime. */
async function sandboxesOf(...configs: Record<string, unknown>[]) {
  const parts = serviceWith(new FakeRuntime());
  const sandboxes: Sandbox[] = [];
  for (const config of configs) sandboxes.push(await parts.service.create('alice', config));
  return { ...parts, sandboxes };
}

describe('Reconciler', () => {
  it('a live sandbox whose container is gone becomes stopped, with the reason', async () => {
    const { runtime, service, reconcilerWith, sandbox } = await withReadySandbox();
    runtime.containers.clear();
    runtime.running.clear();
    const summary = await reconcilerWith().runPass();
    expect(summary.actions).toEqual({ container_gone: 1 });
    expect(await service.get(sandbox.sandboxId)).toMatchObject({
      status: 'stopped',
      lastError: 'its container is gone',
    });
  });

  it('leaves sandboxes younger than the grace period alone', async () => {
    const { runtime, service, reconcilerWith, sandbox } = await withReadySandbox();
    runtime.containers.clear();
    const summary = await reconcilerWith({ graceMs: 60_000 }).runPass();
    expect(summary).toMatchObject({ skippedYoung: 1, actions: {} });
    expect((await service.get(sandbox.sandboxId)).status).toBe('ready');
  });

  it('ends a sandbox past its expiry as expired, through stop and remove', async () => {
    const { runtime, service, store, reconcilerWith, sandbox } = await withReadySandbox();
    await age(store, sandbox.sandboxId, 3 * HOUR);
    runtime.calls.length = 0;
    const summary = await reconcilerWith().runPass();
    expect(summary.actions).toEqual({ expired: 1 });
    expect(runtime.calls).toEqual(['list', 'stop', 'remove']);
    expect((await service.get(sandbox.sandboxId)).status).toBe('expired');
  });

  it('expires each sandbox at its own ttl, and an extend moves it', async () => {
    const { service, store, reconcilerWith, sandboxes } = await sandboxesOf(
      { ttl_seconds: 60 },
      { ttl_seconds: 3600 },
      { ttl_seconds: 60 },
    );
    const [short, long, extended] = sandboxes as [Sandbox, Sandbox, Sandbox];
    expect(short.expiresAt.getTime() - short.createdAt.getTime()).toBe(60_000);
    await service.extend(extended.sandboxId, 3600);
    for (const { sandboxId } of [short, long, extended]) await age(store, sandboxId, 120_000);
    expect((await reconcilerWith().runPass()).actions).toEqual({ expired: 1 });
    expect((await service.get(short.sandboxId)).status).toBe('expired');
    expect((await service.get(long.sandboxId)).status).toBe('ready');
    expect((await service.get(extended.sandboxId)).status).toBe('ready');
  });

  it('ends an idle sandbox as expired, and counts a running command and a heartbeat as activity', async () => {
    const idleAfterAMinute = { idle_timeout_seconds: 60 };
    const { service, store, reconcilerWith, sandboxes } = await sandboxesOf(
      idleAfterAMinute,
      idleAfterAMinute,
      idleAfterAMinute,
      {},
    );
    const [idle, busy, beating, never] = sandboxes as [Sandbox, Sandbox, Sandbox, Sandbox];
    for (const { sandboxId } of [idle, busy, beating, never]) await age(store, sandboxId, 120_000);
    // A command still running, up to its timeout, and a heartbeat just now.
    await store.touchActivity(busy.sandboxId, new Date(Date.now() + 300_000));
    await service.heartbeat(beating.sandboxId);
    expect((await reconcilerWith().runPass()).actions).toEqual({ idle: 1 });
    expect(await service.get(idle.sandboxId)).toMatchObject({
      status: 'expired',
      lastError: 'idle for more than 60 s',
    });
    for (const { sandboxId } of [busy, beating, never]) {
      expect((await service.get(sandboxId)).status).toBe('ready');
    }
  });

  it('a command restarts the idle clock when it ends', async () => {
    const runtime = new FakeRuntime();
    const { service } = serviceWith(runtime);
    const sandbox = await service.create('alice', { idle_timeout_seconds: 60 });
    await service.exec(sandbox.sandboxId, { command: 'true', user: 'agent', timeout: 600 });
    const after = await service.get(sandbox.sandboxId);
    expect(after.lastActivityAt.getTime()).toBeGreaterThanOrEqual(sandbox.lastActivityAt.getTime());
    expect(after.lastActivityAt.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('finishes a create that was interrupted, once it is stuck, and removes its container', async () => {
    const runtime = new FakeRuntime();
    const { service, store, reconcilerWith } = serviceWith(runtime);
    const sandbox = newSandbox('alice', {}, HOST_ID);
    await store.save(sandbox);
    await runtime.create({
      name: sandbox.sandboxId,
      image: 'i',
      labels: { 'matrx.user_id': 'alice', 'matrx.host_id': HOST_ID },
      env: {},
      cpuLimit: 1,
      memoryLimitBytes: 1,
      network: 'none',
    });
    expect((await reconcilerWith().runPass()).actions).toEqual({});
    await age(store, sandbox.sandboxId, 2 * 60_000);
    expect((await reconcilerWith().runPass()).actions).toEqual({ create_interrupted: 1 });
    expect((await service.get(sandbox.sandboxId)).status).toBe('stopped');
    expect(runtime.containers.size).toBe(0);
  });

  it('warns about a container with no row and leaves it running (Postgres registry)', async () => {
    const { runtime, store, reconcilerWith, sandbox } = await withReadySandbox();
    await store.delete(sandbox.sandboxId);
    const summary = await reconcilerWith().runPass();
    expect(summary.actions).toEqual({ unknown_container: 1 });
    expect(runtime.running.size).toBe(1);
    expect(await store.get(sandbox.sandboxId)).toBeNull();
  });

  it('adopts a container with no row when the registry is in memory', async () => {
    const { store, reconcilerWith, sandbox } = await withReadySandbox();
    await store.delete(sandbox.sandboxId);
    const summary = await reconcilerWith({ adoptOrphans: true }).runPass();
    expect(summary.actions).toEqual({ adopted: 1 });
    expect(await store.get(sandbox.sandboxId)).toMatchObject({
      status: 'running',
      userId: 'alice',
    });
  });

  it("never touches another host's rows or containers", async () => {
    const runtime = new FakeRuntime();
    const hostB = serviceWith(runtime, 'host-b');
    const sandbox = await hostB.service.create('bob', {});
    runtime.running.clear();
    const hostA = serviceWith(runtime);
    await hostB.store.delete(sandbox.sandboxId);
    // Host A sees host B's container: neither adopted nor warned about.
    expect((await hostA.reconcilerWith({ adoptOrphans: true }).runPass()).actions).toEqual({});
    expect(runtime.containers.size).toBe(1);
  });

  it('does nothing when the registry or the engine cannot be read', async () => {
    const { runtime, service, reconcilerWith, sandbox } = await withReadySandbox();
    runtime.containers.clear();
    runtime.failOn.set('list', new UnavailableError('Docker engine', 'down'));
    const summary = await reconcilerWith().runPass();
    expect(summary).toMatchObject({ outcome: 'skipped', actions: {} });
    expect((await service.get(sandbox.sandboxId)).status).toBe('ready');
  });

  it('one pass at a time: a second pass while one runs is skipped', async () => {
    const runtime = new FakeRuntime();
    const { reconcilerWith } = serviceWith(runtime);
    const reconciler = reconcilerWith();
    const [first, second] = await Promise.all([reconciler.runPass(), reconciler.runPass()]);
    expect([first.outcome, second.outcome].sort()).toEqual(['done', 'skipped']);
  });
});

describe('Sandboxes of another host', () => {
  it('are read, and any action on them is a conflict naming the host', async () => {
    const runtime = new FakeRuntime();
    const hostB = serviceWith(runtime, 'host-b');
    const sandbox = await hostB.service.create('bob', {});
    const hostA = serviceWith(runtime);
    await hostA.store.save((await hostB.store.get(sandbox.sandboxId)) ?? sandbox);
    expect((await hostA.service.get(sandbox.sandboxId)).hostId).toBe('host-b');
    const id = sandbox.sandboxId;
    for (const action of [
      () => hostA.service.exec(id, { command: 'true', user: 'agent' }),
      () => hostA.service.destroy(id, true),
      () => hostA.service.heartbeat(id),
      () => hostA.service.complete(id, undefined),
    ]) {
      await expect(action()).rejects.toThrow(
        new ConflictError(`Sandbox ${id} runs on host host-b; send this request to that host`),
      );
    }
    expect(runtime.calls.filter((call) => call === 'exec' || call === 'stop')).toEqual([]);
  });
});
