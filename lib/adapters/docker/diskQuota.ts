import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import type { DiskLimitMode } from '../../ports.js';
import { dockerMessage, toServiceError } from './dockerErrors.js';

/** What `docker info` says of its storage; dockerode types the whole answer as `any`. */
interface StorageInfo {
  Driver?: string;
  DriverStatus?: [string, string][] | null;
}

/** Storage drivers that can size a container's writable layer (`--storage-opt size`). */
const SIZING_DRIVERS = ['overlay2', 'btrfs', 'zfs', 'devicemapper'];

/** A label of the trial container, so that nobody mistakes it for a sandbox. */
export const DISK_PROBE_LABEL = 'matrx.disk_probe';

/**
 * Whether the engine can hold each container's writable layer to `sizeBytes`. overlay2 can only
 * on xfs mounted with project quotas (`pquota`), which `docker info` does not show: a container
 * is created with the size, from `image`, and removed at once; the engine refuses the size at
 * create time where it cannot apply it.
 */
export async function probeDiskLimitMode(
  docker: Docker,
  image: string,
  sizeBytes: number,
): Promise<DiskLimitMode> {
  let info: StorageInfo;
  try {
    info = (await docker.info()) as StorageInfo;
  } catch (error) {
    throw toServiceError(error, 'read the storage driver');
  }
  const driver = info.Driver ?? '';
  if (!SIZING_DRIVERS.includes(driver)) return 'measured';
  const backing = info.DriverStatus?.find(([key]) => key === 'Backing Filesystem')?.[1];
  if (driver === 'overlay2' && backing !== 'xfs') return 'measured';
  let trial: Docker.Container;
  try {
    trial = await docker.createContainer({
      name: `matrx-disk-probe-${randomBytes(4).toString('hex')}`,
      Image: image,
      Labels: { [DISK_PROBE_LABEL]: 'true' },
      HostConfig: { NetworkMode: 'none', StorageOpt: { size: String(sizeBytes) } },
    });
  } catch (error) {
    if (/storage-opt|quota|size/i.test(dockerMessage(error))) return 'measured';
    throw toServiceError(error, 'create a container with a disk size');
  }
  await trial.remove({ force: true }).catch(() => undefined);
  return 'quota';
}
