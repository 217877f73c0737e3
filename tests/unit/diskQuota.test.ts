import { describe, expect, it } from '@jest/globals';
import type Docker from 'dockerode';
import { DISK_PROBE_LABEL, probeDiskLimitMode } from '../../lib/adapters/docker/diskQuota.js';
import { UnavailableError } from '../../lib/errors.js';

/** An engine with this storage, that answers a sized create with `created` (an Error: refuses). */
function engine(driver: string, backing: string, created: Error | 'ok' = 'ok') {
  const asked: Record<string, unknown>[] = [];
  const removed: string[] = [];
  const docker = {
    info: async () => ({ Driver: driver, DriverStatus: [['Backing Filesystem', backing]] }),
    createContainer: async (options: Record<string, unknown>) => {
      asked.push(options);
      if (created !== 'ok') throw created;
      return { remove: async () => void removed.push(String(options.name)) };
    },
  } as unknown as Docker;
  return { docker, asked, removed };
}

const refused = Object.assign(new Error('(HTTP code 500) server error'), {
  statusCode: 500,
  json: {
    message: "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
  },
});

describe('probeDiskLimitMode', () => {
  it('overlay2 on ext4 is measured, with no trial container', async () => {
    const { docker, asked } = engine('overlay2', 'extfs');
    expect(await probeDiskLimitMode(docker, 'img', 64)).toBe('measured');
    expect(asked).toEqual([]);
  });

  it('overlay2 on xfs: a trial container with the size says quota, and is removed', async () => {
    const { docker, asked, removed } = engine('overlay2', 'xfs');
    expect(await probeDiskLimitMode(docker, 'img', 64)).toBe('quota');
    expect(asked[0]).toMatchObject({
      Image: 'img',
      Labels: { [DISK_PROBE_LABEL]: 'true' },
      HostConfig: { NetworkMode: 'none', StorageOpt: { size: '64' } },
    });
    expect(removed).toEqual([asked[0]?.name]);
  });

  it('xfs without pquota refuses the size: measured', async () => {
    const { docker } = engine('overlay2', 'xfs', refused);
    expect(await probeDiskLimitMode(docker, 'img', 64)).toBe('measured');
  });

  it('another failure is the engine being unavailable, not an answer', async () => {
    const down = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    await expect(probeDiskLimitMode(engine('btrfs', 'btrfs', down).docker, 'i', 1)).rejects.toThrow(
      UnavailableError,
    );
  });
});
