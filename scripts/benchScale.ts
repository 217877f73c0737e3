import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type Docker from 'dockerode';
import { parseSize } from '../lib/domain/size.js';
import { inParallel, progress, sleep, stats, type Call } from './benchClient.js';
import { rawCreateReady, removeContainer } from './benchRaw.js';

export interface ContainerMemory {
  /** The cgroup's usage less its page cache: the memory of the container's processes. */
  bytes: number;
  pids: number;
}

export interface ScaleTimings {
  count: number;
  memory: string;
  api: ContainerMemory[];
  raw: ContainerMemory[];
  /** GET /health's channels.open before the creates and with the sandboxes up. */
  channelsBefore: number;
  channelsAfter: number;
  /** The service's processes (launcher and serverless-offline), VmRSS in bytes. */
  serviceRssBefore: number;
  serviceRssAfter: number;
}

const PARALLEL_CREATES = 8;
const SETTLE_MS = 3000;

/** VmRSS of `root` and every process under it, in bytes. */
export function treeRss(root: number): number {
  return statusSum(treePids(root), 'VmRSS');
}

/** `root` and every process under it. */
export function treePids(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The name may hold spaces and brackets: fields resume after its last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // ended meanwhile
    }
  }
  const inTree = (pid: number): boolean =>
    pid === root || (pid > 1 && inTree(parents.get(pid) ?? 0));
  return [...parents.keys()].filter(inTree);
}

/**
 * Sets each process's peak RSS (VmHWM) to its RSS now, through clear_refs (Linux 4.0 and later;
 * root); whether every one was reset (one that ended meanwhile, or is not ours, keeps its peak).
 */
export function resetPeakRss(pids: number[]): boolean {
  let all = true;
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      all = false;
    }
  }
  return all;
}

/** A size field of /proc/<pid>/status (VmRSS, VmHWM) summed over `pids`, in bytes. */
export function statusSum(pids: number[], field: 'VmRSS' | 'VmHWM'): number {
  const pattern = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm');
  let bytes = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      bytes += Number(pattern.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      // ended meanwhile
    }
  }
  return bytes;
}

async function containerMemory(docker: Docker, id: string): Promise<ContainerMemory> {
  const { memory_stats: memory, pids_stats: pids } = await docker
    .getContainer(id)
    .stats({ stream: false, 'one-shot': true });
  // cgroup v1 calls the page cache total_cache, v2 file.
  const figures = memory.stats as unknown as Record<string, number | undefined>;
  const cache = figures.total_cache ?? figures.file ?? 0;
  return { bytes: memory.usage - cache, pids: pids?.current ?? 0 };
}

async function openChannels(call: Call): Promise<number> {
  const health = await call('GET', '/health');
  return Number((health.channels as { open?: number } | undefined)?.open);
}

/**
 * The median of a few readings of the service's RSS, which moves with each garbage collection,
 * after a settle: what the last requests left behind (garbage, timers) is not the sandboxes' cost.
 */
async function serviceRss(serverPid: number): Promise<number> {
  await sleep(SETTLE_MS);
  const readings: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    if (i > 0) await sleep(500);
    readings.push(treeRss(serverPid));
  }
  return stats(readings).median;
}

/**
 * `count` idle sandboxes created through the API, each with its channel open, next to `count`
 * containers started raw (same image, same memory limit, no channel): the memory of each
 * container, and the service's RSS before and after its sandboxes were up.
 */
export async function benchScale(
  call: Call,
  docker: Docker,
  options: { count: number; memory: string; image: string; user: string; serverPid: number },
): Promise<ScaleTimings> {
  const { count, memory, user } = options;
  const channelsBefore = await openChannels(call);
  const serviceRssBefore = await serviceRss(options.serverPid);
  const containerIds: string[] = [];
  progress('scale', `creating ${count} sandboxes through the API (memory ${memory})`);
  await inParallel(
    count,
    async (i) => {
      const created = await call('POST', '/sandboxes', {
        user_id: `${user}-idle-${i}`,
        config: { memory },
      });
      // The channel opens once the sandbox is ready; a first command makes sure it is open.
      await call('POST', `/sandboxes/${String(created.sandbox_id)}/exec`, { command: 'true' });
      containerIds.push(String(created.container_id));
      if (containerIds.length % 10 === 0)
        progress('scale', `${containerIds.length} API sandboxes ready`);
    },
    PARALLEL_CREATES,
  );
  const channelsAfter = await openChannels(call);
  progress('scale', `measuring (channels open: ${channelsBefore} before, ${channelsAfter} now)`);
  const serviceRssAfter = await serviceRss(options.serverPid);
  const api: ContainerMemory[] = [];
  await inParallel(count, async (i) => {
    api.push(await containerMemory(docker, containerIds[i] ?? ''));
  });
  // Ending them through the API would save each home, which walks the image's files: minutes.
  progress('scale', `removing the ${count} API sandboxes' containers`);
  await inParallel(count, async (i) => {
    await removeContainer(docker, containerIds[i] ?? '');
  });

  progress('scale', `starting ${count} raw containers (memory ${memory})`);
  const rawIds: string[] = [];
  try {
    await inParallel(
      count,
      async (i) => {
        const container = await rawCreateReady(docker, {
          name: `${user}-raw-idle-${i}`,
          image: options.image,
          user,
          memoryBytes: parseSize(memory),
        });
        rawIds.push(container.id);
        if (rawIds.length % 10 === 0) progress('scale', `${rawIds.length} raw containers ready`);
      },
      PARALLEL_CREATES,
    );
    await sleep(SETTLE_MS);
    const raw: ContainerMemory[] = [];
    await inParallel(count, async (i) => {
      raw.push(await containerMemory(docker, rawIds[i] ?? ''));
    });
    return {
      count,
      memory,
      api,
      raw,
      channelsBefore,
      channelsAfter,
      serviceRssBefore,
      serviceRssAfter,
    };
  } finally {
    progress('scale', `removing the ${count} raw containers`);
    await inParallel(rawIds.length, async (i) => {
      await removeContainer(docker, rawIds[i] ?? '');
    });
  }
}

/** One line per side (median and p95 per container), then the service's RSS. */
export function scaleRows(scale: ScaleTimings): string[] {
  const mib = (bytes: number) => (bytes / 1024 ** 2).toFixed(1).padStart(6);
  const side = (name: string, sizes: ContainerMemory[]) => {
    const { median, p95 } = stats(sizes.map((s) => s.bytes));
    const pids = stats(sizes.map((s) => s.pids)).median;
    return `${name.padEnd(24)} memory per container median ${mib(median)} MiB p95 ${mib(p95)} MiB, ${pids} processes`;
  };
  const channel =
    stats(scale.api.map((s) => s.bytes)).median - stats(scale.raw.map((s) => s.bytes)).median;
  const grown = scale.serviceRssAfter - scale.serviceRssBefore;
  const opened = `channels.open ${scale.channelsBefore} before and ${scale.channelsAfter} after`;
  return [
    side(`${scale.count} API sandboxes`, scale.api),
    side(`${scale.count} raw containers`, scale.raw),
    `channel in the sandbox    ${mib(channel)} MiB per sandbox (median difference, limit ${scale.memory} each)`,
    `service RSS               ${mib(scale.serviceRssBefore)} MiB before, ${mib(scale.serviceRssAfter)} MiB with the ${scale.count} sandboxes up: ${(grown / 1024 / scale.count).toFixed(0)} KiB per sandbox (${opened})`,
  ];
}
