import { describe, expect, it } from '@jest/globals';
import { Logger } from '@aws-lambda-powertools/logger';
import { DiskWatch } from '../../lib/service/diskWatch.js';
import type { EndOptions, SandboxEnding } from '../../lib/service/ending.js';
import { HOST_ID, withReadySandbox } from './fakes.js';

const MIB = 1024 ** 2;
const LIMIT = 64 * MIB;
const logger = new Logger({ logLevel: 'CRITICAL' });

/** A ready sandbox whose container wrote `used` bytes, `home` of them in its home (null: du fails). */
async function sandboxThatWrote(used: number, home: number | null) {
  const parts = await withReadySandbox();
  const containerId = parts.sandbox.containerId ?? '';
  parts.runtime.diskUsed.set(containerId, used);
  parts.runtime.execReplies = (request) =>
    request.command.startsWith('du ')
      ? home === null
        ? { exitCode: 1, stdout: '' }
        : { stdout: `${home}\t/home/agent\n` }
      : {};
  const watch = new DiskWatch(
    parts.store,
    parts.runtime,
    parts.ending,
    { hostId: HOST_ID, limitBytes: LIMIT },
    logger,
  );
  return { ...parts, watch };
}

/** The same watch over an ending that only records what it was asked. */
function recordingEnding() {
  const ends: EndOptions[] = [];
  const ending = {
    end: async (_sandboxId: string, options: EndOptions) => {
      ends.push(options);
    },
  } as unknown as SandboxEnding;
  return { ends, ending };
}

describe('DiskWatch (measured mode)', () => {
  it('leaves a sandbox within its limit alone', async () => {
    const { watch, service, sandbox } = await sandboxThatWrote(LIMIT, 0);
    expect(await watch.runPass()).toEqual({ mode: 'measured', measured: 1, ended: 0, failed: 0 });
    expect((await service.get(sandbox.sandboxId)).status).toBe('ready');
  });

  it('ends a sandbox over its limit as failed, naming the limit; its home saved when it fits', async () => {
    const { watch, service, sandbox, runtime } = await sandboxThatWrote(LIMIT + 1, 10 * MIB);
    expect(await watch.runPass()).toMatchObject({ measured: 1, ended: 1 });
    const ended = await service.get(sandbox.sandboxId);
    expect(ended.status).toBe('failed');
    expect(ended.lastError).toBe(
      'Disk limit exceeded: the sandbox wrote 64.0 MiB, over MATRX_CONTAINER_DISK_LIMIT ' +
        '(64.0 MiB); its home (10.0 MiB) was saved',
    );
    expect(runtime.running.size).toBe(0);
    expect(runtime.containers.size).toBe(0);
    const du = runtime.execRequests.find((request) => request.command.startsWith('du '));
    expect(du).toMatchObject({ user: 'root', command: 'du -s -x -b /home/agent' });
  });

  it('saves the home only when it alone fits within the limit, or could be measured', async () => {
    for (const [home, saved, says] of [
      [LIMIT, true, 'its home (64.0 MiB) was saved'],
      [LIMIT + MIB, false, 'its home alone (65.0 MiB) is over the limit and was not saved'],
      [null, false, 'its home could not be measured and was not saved'],
    ] as const) {
      const parts = await sandboxThatWrote(2 * LIMIT, home);
      const { ends, ending } = recordingEnding();
      const watch = new DiskWatch(
        parts.store,
        parts.runtime,
        ending,
        { hostId: HOST_ID, limitBytes: LIMIT },
        logger,
      );
      await watch.runPass();
      expect(ends).toEqual([
        expect.objectContaining({ graceful: false, finalStatus: 'failed', saveHome: saved }),
      ]);
      expect(ends[0]?.lastError).toContain(says);
    }
  });

  it('a sandbox that cannot be measured is counted and tried again next pass', async () => {
    const { watch, runtime, service, sandbox } = await sandboxThatWrote(2 * LIMIT, 0);
    runtime.failOn.set('diskUsage', new Error('engine busy'));
    expect(await watch.runPass()).toMatchObject({ measured: 0, ended: 0, failed: 1 });
    expect((await service.get(sandbox.sandboxId)).status).toBe('ready');
    runtime.failOn.delete('diskUsage');
    expect(await watch.runPass()).toMatchObject({ ended: 1 });
  });
});

describe('DiskWatch (quota mode)', () => {
  it('measures nothing: the engine holds the limit', async () => {
    const { watch, runtime } = await sandboxThatWrote(2 * LIMIT, 0);
    runtime.diskMode = 'quota';
    expect(await watch.runPass()).toEqual({ mode: 'quota', measured: 0, ended: 0, failed: 0 });
    expect(runtime.calls).not.toContain('diskUsage');
  });
});
