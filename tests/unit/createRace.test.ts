import { describe, expect, it } from '@jest/globals';
import { ConflictError } from '../../lib/errors.js';
import { InFlight } from '../../lib/service/inFlight.js';
import { FakeRuntime, gate, serviceWith } from './fakes.js';

/**
 * A create whose container is slow to start (a slow engine) while reconcile passes run with no
 * grace: the pass found the sandbox `starting` and its container not running, ended it, and the
 * create then failed with a 409 about a move from shutting_down to ready.
 */
async function slowCreate() {
  const runtime = new FakeRuntime();
  const started = gate();
  runtime.startGate = started.opened;
  const parts = serviceWith(runtime);
  const creating = parts.service.create('alice', {});
  creating.catch(() => undefined);
  const [row] = await until(async () => {
    const rows = await parts.store.list({ statuses: ['starting'] });
    return rows.length > 0 ? rows : undefined;
  });
  return { ...parts, runtime, creating, sandboxId: row?.sandboxId ?? '', release: started.open };
}

async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('never came');
}

describe('a pass while a create is in flight', () => {
  it('in this process, with no grace and no stuck time: left alone, and the create succeeds', async () => {
    const { reconcilerWith, creating, release, runtime } = await slowCreate();
    const summary = await reconcilerWith({ graceMs: 0, stuckMs: 0 }).runPass();
    expect(summary).toMatchObject({ actions: {}, skippedInFlight: 1 });
    release();
    expect((await creating).status).toBe('ready');
    expect(runtime.calls).not.toContain('stop');
  });

  it('in another process (shared registry): a starting sandbox is left alone until it is stuck', async () => {
    const { reconcilerWith, creating, release } = await slowCreate();
    const elsewhere = reconcilerWith({ graceMs: 0, stuckMs: 60_000, inFlight: new InFlight() });
    expect((await elsewhere.runPass()).actions).toEqual({});
    release();
    expect((await creating).status).toBe('ready');
  });

  it('20 passes racing 20 slow creates end none of them', async () => {
    const creates = await Promise.all(Array.from({ length: 20 }, () => slowCreate()));
    const passes = creates.map(({ reconcilerWith }) =>
      reconcilerWith({ graceMs: 0, stuckMs: 0 }).runPass(),
    );
    for (const { release } of creates) release();
    await Promise.all(passes);
    const statuses = await Promise.all(
      creates.map(async ({ creating }) => (await creating).status),
    );
    expect(statuses).toEqual(Array(20).fill('ready'));
  });
});

describe('a create ended while it runs', () => {
  it('DELETE waits for the create, then ends the sandbox', async () => {
    const { service, creating, release, sandboxId, runtime } = await slowCreate();
    const deleting = service.destroy(sandboxId, true);
    release();
    expect((await creating).status).toBe('ready');
    await deleting;
    expect((await service.get(sandboxId)).status).toBe('stopped');
    expect(runtime.containers.size).toBe(0);
  });

  it('completed meanwhile: the create answers that it was ended, not a move it could not make', async () => {
    const { service, creating, release, sandboxId, inFlight, runtime } = await slowCreate();
    expect((await service.complete(sandboxId, undefined)).status).toBe('shutting_down');
    release();
    await expect(creating).rejects.toBeInstanceOf(ConflictError);
    await expect(creating).rejects.toThrow(
      `Sandbox ${sandboxId} was ended while it was being created`,
    );
    await inFlight.drain();
    expect((await service.get(sandboxId)).status).toBe('stopped');
    expect(runtime.containers.size).toBe(0);
  });
});
