import { describe, expect, it } from '@jest/globals';
import { ConflictError, NotFoundError, UnavailableError } from '../../lib/errors.js';
import { healthWire } from '../../lib/wire.js';
import { FakeRuntime, serviceWith, withReadySandbox } from './fakes.js';

describe('SandboxService', () => {
  it('creates a sandbox that is ready, with its container recorded', async () => {
    const { runtime, sandbox } = await withReadySandbox();
    expect(sandbox.status).toBe('ready');
    expect(sandbox.containerId).toMatch(/^container-sbx-/);
    expect(runtime.calls).toEqual(['create', 'start']);
  });

  it('a sandbox that never gets ready is failed, with the reason, and its container removed', async () => {
    const runtime = new FakeRuntime();
    runtime.readyOutcome = { ready: false, reason: 'container exited with code 1' };
    const { service } = serviceWith(runtime);
    const sandbox = await service.create('alice', {});
    expect(sandbox).toMatchObject({ status: 'failed', lastError: 'container exited with code 1' });
    expect(runtime.calls).toContain('remove');
  });

  it('Docker down on create: the error goes up and the sandbox is failed', async () => {
    const runtime = new FakeRuntime();
    runtime.failOn.set('create', new UnavailableError('Docker engine', 'Docker engine down'));
    const { service, store } = serviceWith(runtime);
    await expect(service.create('alice', {})).rejects.toThrow(UnavailableError);
    expect((await store.list()).map((s) => s.status)).toEqual(['failed']);
  });

  it('exec moves ready to running and refuses sandboxes that are not running', async () => {
    const { service, sandbox } = await withReadySandbox();
    const result = await service.exec(sandbox.sandboxId, { command: 'echo hi', user: 'agent' });
    expect(result.stdout).toBe('echo hi');
    expect((await service.get(sandbox.sandboxId)).status).toBe('running');
    await service.destroy(sandbox.sandboxId, true);
    await expect(
      service.exec(sandbox.sandboxId, { command: 'true', user: 'agent' }),
    ).rejects.toThrow(ConflictError);
  });

  it('exec on a container that is gone is a conflict, not a crash', async () => {
    const { runtime, service, sandbox } = await withReadySandbox();
    runtime.failOn.set('exec', new NotFoundError('no such container'));
    await expect(
      service.exec(sandbox.sandboxId, { command: 'true', user: 'agent' }),
    ).rejects.toThrow(ConflictError);
  });

  it('unknown sandboxes are NotFound with the contract message', async () => {
    const { service } = serviceWith(new FakeRuntime());
    await expect(service.get('sbx-000000000000')).rejects.toThrow(
      'Sandbox sbx-000000000000 not found',
    );
    await expect(service.heartbeat('sbx-000000000000')).rejects.toThrow(NotFoundError);
  });

  it('destroy stops then removes, and a second destroy does nothing more', async () => {
    const { runtime, service, sandbox } = await withReadySandbox();
    await Promise.all([
      service.destroy(sandbox.sandboxId, true),
      service.destroy(sandbox.sandboxId, true),
    ]);
    await service.destroy(sandbox.sandboxId, false);
    expect(runtime.calls.filter((c) => c === 'stop' || c === 'remove')).toEqual(['stop', 'remove']);
    expect((await service.get(sandbox.sandboxId)).status).toBe('stopped');
  });

  it('a failed stop leaves the sandbox shutting_down with last_error, and a retry finishes', async () => {
    const { runtime, service, sandbox } = await withReadySandbox();
    runtime.failOn.set('stop', new UnavailableError('Docker engine', 'Docker engine down'));
    await expect(service.destroy(sandbox.sandboxId, true)).rejects.toThrow(UnavailableError);
    expect(await service.get(sandbox.sandboxId)).toMatchObject({
      status: 'shutting_down',
      lastError: 'Docker engine down',
    });
    runtime.failOn.clear();
    await service.destroy(sandbox.sandboxId, true);
    expect((await service.get(sandbox.sandboxId)).status).toBe('stopped');
  });

  it('complete answers shutting_down at once and finishes in the background', async () => {
    const { runtime, service, inFlight, sandbox } = await withReadySandbox();
    const answered = await service.complete(sandbox.sandboxId, { ok: true });
    expect(answered.status).toBe('shutting_down');
    await inFlight.drain();
    expect((await service.get(sandbox.sandboxId)).status).toBe('stopped');
    expect(runtime.running.size).toBe(0);
  });

  it('health counts active sandboxes and says degraded when Docker is down', async () => {
    const runtime = new FakeRuntime();
    const { service, health } = serviceWith(runtime);
    await service.create('alice', {});
    expect(await health.check()).toMatchObject({ status: 'healthy', activeSandboxes: 1 });
    runtime.channels = { open: 3, fallback: 1, direct: 2 };
    expect(healthWire(await health.check()).channels).toEqual({ open: 3, fallback: 1, direct: 2 });
    runtime.failOn.set('ping', new UnavailableError('Docker engine', 'down'));
    expect(await health.check()).toMatchObject({
      status: 'degraded',
      docker: { reachable: false },
    });
  });
});
