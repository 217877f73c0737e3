import { describe, expect, it } from '@jest/globals';
import { ConflictError, NotFoundError } from '../../lib/errors.js';
import { processListWire, processOutputWire, processWire } from '../../lib/wire.js';
import { FakeRuntime, serviceWith, withReadySandbox } from './fakes.js';

const sleeper = { command: 'sleep 300', user: 'agent' };

describe('ProcessService', () => {
  it('an unknown sandbox is its 404 first, whatever the process id', async () => {
    const runtime = new FakeRuntime();
    const { processes } = serviceWith(runtime);
    const unknown = 'sbx-000000000000';
    await expect(processes.start(unknown, sleeper)).rejects.toThrow(`Sandbox ${unknown} not found`);
    await expect(processes.list(unknown)).rejects.toThrow(NotFoundError);
    await expect(processes.get(unknown, 'not-a-process')).rejects.toThrow(
      `Sandbox ${unknown} not found`,
    );
    await expect(processes.kill(unknown, 'proc-0123456789ab', 'TERM')).rejects.toThrow(
      `Sandbox ${unknown} not found`,
    );
    expect(runtime.calls).toEqual([]);
  });

  it('starts a process with a proc- id, and moves a ready sandbox to running', async () => {
    const { runtime, service, processes, sandbox } = await withReadySandbox();
    const started = await processes.start(sandbox.sandboxId, {
      command: 'npm run dev',
      user: 'agent',
      cwd: '/home/agent/app',
      env: { PORT: '3000' },
      timeout: 60,
    });
    expect(started.processId).toMatch(/^proc-[0-9a-f]{12}$/);
    expect(started).toMatchObject({ status: 'running', exitCode: null, cwd: '/home/agent/app' });
    expect(runtime.process(started.processId).start).toEqual({
      processId: started.processId,
      command: 'npm run dev',
      user: 'agent',
      cwd: '/home/agent/app',
      env: { PORT: '3000' },
      timeoutSeconds: 60,
    });
    expect((await service.get(sandbox.sandboxId)).status).toBe('running');
    const other = await processes.start(sandbox.sandboxId, sleeper);
    expect(other.processId).not.toBe(started.processId);
    expect((await processes.list(sandbox.sandboxId)).map((p) => p.processId)).toEqual([
      started.processId,
      other.processId,
    ]);
  });

  it('counts a start as activity of a sandbox that can go idle', async () => {
    const runtime = new FakeRuntime();
    const { service, processes, store } = serviceWith(runtime);
    const sandbox = await service.create('alice', { idle_timeout_seconds: 600 });
    const before = sandbox.lastActivityAt.getTime();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await processes.start(sandbox.sandboxId, sleeper);
    const after = (await store.get(sandbox.sandboxId))?.lastActivityAt.getTime() ?? 0;
    expect(after).toBeGreaterThan(before);
  });

  it('refuses every request on a sandbox that is not running, with a 409', async () => {
    const { runtime, service, processes, sandbox } = await withReadySandbox();
    const { processId } = await processes.start(sandbox.sandboxId, sleeper);
    await service.destroy(sandbox.sandboxId, false);
    const calls = runtime.calls.length;
    await expect(processes.start(sandbox.sandboxId, sleeper)).rejects.toThrow(ConflictError);
    await expect(processes.list(sandbox.sandboxId)).rejects.toThrow('is not running');
    await expect(processes.get(sandbox.sandboxId, processId)).rejects.toThrow(ConflictError);
    await expect(
      processes.readOutput(sandbox.sandboxId, processId, {
        stdoutOffset: 0,
        stderrOffset: 0,
        waitSeconds: 0,
      }),
    ).rejects.toThrow(ConflictError);
    await expect(processes.kill(sandbox.sandboxId, processId, 'KILL')).rejects.toThrow(
      ConflictError,
    );
    expect(runtime.calls.length).toBe(calls);
  });

  it('refuses a sandbox of another host with a 409', async () => {
    const { processes, store, sandbox } = await withReadySandbox();
    await store.save({ ...sandbox, hostId: 'host-b' });
    await expect(processes.list(sandbox.sandboxId)).rejects.toThrow('runs on host host-b');
  });

  it.each(['nope', 'proc-0123', 'proc-0123456789AB', 'proc-0123456789abc', '../proc'])(
    'a process id %s that cannot be one is its 404 without asking the runtime',
    async (processId) => {
      const { runtime, processes, sandbox } = await withReadySandbox();
      const calls = [...runtime.calls];
      await expect(processes.get(sandbox.sandboxId, processId)).rejects.toThrow(
        `Process ${processId} not found`,
      );
      await expect(processes.writeStdin(sandbox.sandboxId, processId, 'x', false)).rejects.toThrow(
        NotFoundError,
      );
      expect(runtime.calls).toEqual(calls);
    },
  );

  it('a process the sandbox does not have is its 404', async () => {
    const { processes, sandbox } = await withReadySandbox();
    await expect(processes.get(sandbox.sandboxId, 'proc-0123456789ab')).rejects.toThrow(
      'Process proc-0123456789ab not found',
    );
    await expect(processes.kill(sandbox.sandboxId, 'proc-0123456789ab', 'TERM')).rejects.toThrow(
      NotFoundError,
    );
  });

  it('reads output from the offsets asked, at most MATRX_MAX_OUTPUT_BYTES per stream', async () => {
    const { runtime, processes, sandbox } = await withReadySandbox();
    const { processId } = await processes.start(sandbox.sandboxId, sleeper);
    const process = runtime.process(processId);
    process.stdout = 'hi\n';
    process.stderr = 'err\n';
    runtime.endProcess(process, 'exited', 0);
    const query = { stdoutOffset: 1, stderrOffset: 0, waitSeconds: 2.5 };
    const output = await processes.readOutput(sandbox.sandboxId, processId, query);
    expect(runtime.outputRequests).toEqual([
      { stdoutOffset: 1, stderrOffset: 0, waitMs: 2500, maxBytes: 1024 },
    ]);
    expect(processOutputWire(output)).toEqual({
      stdout: 'i\n',
      stderr: 'err\n',
      stdout_offset: 3,
      stderr_offset: 4,
      status: 'exited',
      exit_code: 0,
    });
  });

  it('writes stdin while it runs; once it has ended, the runtime’s 409 goes up as it is', async () => {
    const { runtime, processes, sandbox } = await withReadySandbox();
    const { processId } = await processes.start(sandbox.sandboxId, {
      command: 'cat',
      user: 'agent',
    });
    await processes.writeStdin(sandbox.sandboxId, processId, 'abc', true);
    expect(runtime.process(processId)).toMatchObject({ stdin: 'abc', stdinOpen: false });
    await expect(processes.writeStdin(sandbox.sandboxId, processId, 'more', false)).rejects.toThrow(
      `The stdin of process ${processId} is closed`,
    );
    runtime.endProcess(runtime.process(processId), 'exited', 0);
    await expect(processes.writeStdin(sandbox.sandboxId, processId, '', true)).rejects.toThrow(
      `Process ${processId} has ended`,
    );
  });

  it('kills a process and answers it ended', async () => {
    const { processes, sandbox } = await withReadySandbox();
    const { processId } = await processes.start(sandbox.sandboxId, sleeper);
    const killed = await processes.kill(sandbox.sandboxId, processId, 'TERM');
    expect(killed).toMatchObject({ status: 'killed', exitCode: 143 });
    expect(killed.endedAt).toBeInstanceOf(Date);
  });

  it('a container that is gone is the sandbox’s 409, not a 404 of the process', async () => {
    const { runtime, processes, sandbox } = await withReadySandbox();
    const { processId } = await processes.start(sandbox.sandboxId, sleeper);
    runtime.containers.clear();
    await expect(processes.get(sandbox.sandboxId, processId)).rejects.toThrow(
      `Sandbox ${sandbox.sandboxId} is not running (its container is not)`,
    );
    await expect(processes.writeStdin(sandbox.sandboxId, processId, 'x', false)).rejects.toThrow(
      'its container is not',
    );
    await expect(processes.start(sandbox.sandboxId, sleeper)).rejects.toThrow(
      'its container is not',
    );
    runtime.failOn.set('listProcesses', new ConflictError('container is not running'));
    await expect(processes.list(sandbox.sandboxId)).rejects.toThrow('its container is not');
  });
});

describe('the process wire shape', () => {
  it('is snake_case with ISO times, null while running', () => {
    const startedAt = new Date('2026-12-01T09:30:00.000Z');
    const running = {
      processId: 'proc-0123456789ab',
      command: 'sleep 1',
      user: 'agent',
      cwd: '/home/agent',
      status: 'running',
      exitCode: null,
      startedAt,
      endedAt: null,
    } as const;
    expect(processWire(running)).toEqual({
      process_id: 'proc-0123456789ab',
      command: 'sleep 1',
      user: 'agent',
      cwd: '/home/agent',
      status: 'running',
      exit_code: null,
      started_at: '2026-12-01T09:30:00.000Z',
      ended_at: null,
    });
    const ended = {
      ...running,
      status: 'exited',
      exitCode: 0,
      endedAt: new Date('2026-12-01T09:30:01.000Z'),
    } as const;
    expect(processListWire([ended]).processes[0]).toMatchObject({
      status: 'exited',
      exit_code: 0,
      ended_at: '2026-12-01T09:30:01.000Z',
    });
  });
});
