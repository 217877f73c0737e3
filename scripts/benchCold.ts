import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { parseMountInfo } from '../lib/adapters/fuse/mountTable.js';
import { TIERS, userKey } from '../lib/domain/storage.js';
import { EMBEDDED_BUCKET, embeddedS3Client, type EmbeddedS3 } from '../lib/embeddedS3.js';
import { inParallel, progress, timed, type Call } from './benchClient.js';
import { resetPeakRss } from './benchScale.js';

/** One transfer: its wall time, and the CPU time (user and system) it cost on the host. */
export interface Transfer {
  ms: number;
  rcloneCpuMs: number;
  /** This process: the embedded S3 server, and on the SDK's side the SDK too. */
  benchCpuMs: number;
}

export interface ColdFigures {
  bytes: number;
  files: number;
  /** `head -c`, which writes 4 KiB at a time into the mount: each write one request to rclone. */
  mountWrite: Transfer;
  /** `dd` with 1 MiB blocks. */
  mountWriteLarge: Transfer;
  mountRead: Transfer;
  sdkUpload: Transfer;
  sdkDownload: Transfer;
  /** What rclone read during the mount's read: the whole file from S3, not the page cache. */
  rcloneReadBytes: number;
  /** rclone's RSS before the writes through the mount, and its peak during them. */
  rcloneRssBefore: number;
  rcloneRssPeak: number;
  /** Whether the peak is the write's alone (reset first), not rclone's since it started. */
  rssPeakReset: boolean;
  /** `ls | wc -l` of a directory the mount had not listed, then of the same directory again. */
  mountListFirstMs: number;
  mountListAgainMs: number;
  sdkListMs: number;
}

export type ColdTimings = { unavailable: string } | ColdFigures;

/** An exec needs more than this only if S3 takes under 2 MB/s: the API's longest timeout. */
const EXEC_TIMEOUT_SECONDS = 600;
const CHUNK = Buffer.alloc(1024 * 1024);
const run = promisify(execFile);
/** USER_HZ: /proc counts CPU time in these on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/**
 * The cold tier: `bytes` written to /data/cold with `head -c` (4 KiB writes), then with `dd` (1 MiB
 * writes), and read back with `cat | wc -c` in a sandbox, next to an upload (lib-storage's
 * multipart) and a download of as many bytes with the SDK from the host, to the same S3 server;
 * then a first listing of a directory of `files` objects through the mount next to an SDK listing
 * of its prefix (every page). The objects are put before the sandbox exists, so the mount has
 * never listed that directory.
 */
export async function benchCold(
  call: Call,
  s3: EmbeddedS3,
  options: { user: string; coldRoot: string; bytes: number; files: number },
): Promise<ColdTimings> {
  const { user, bytes, files } = options;
  const client = embeddedS3Client(s3);
  const cold = userKey(user, 'cold');
  const manyPrefix = `${cold}many/`;
  let sandboxId = '';
  try {
    progress('cold', `putting ${files} small objects under ${manyPrefix}`);
    await inParallel(files, async (i) => {
      await client.send(
        new PutObjectCommand({
          Bucket: EMBEDDED_BUCKET,
          Key: `${manyPrefix}f${String(i).padStart(5, '0')}`,
          Body: `file ${i}\n`,
        }),
      );
    });
    const created = await call('POST', '/sandboxes', { user_id: user });
    sandboxId = String(created.sandbox_id);
    if (created.cold_tier !== 'mounted') {
      const health = await call('GET', '/health');
      const reason = (health.cold as { reason?: string } | undefined)?.reason;
      return { unavailable: `cold_tier ${String(created.cold_tier)}: ${reason ?? 'no reason'}` };
    }
    const exec = async (command: string) => {
      const answer = await call('POST', `/sandboxes/${sandboxId}/exec`, {
        command,
        timeout: EXEC_TIMEOUT_SECONDS,
      });
      if (answer.exit_code !== 0) {
        throw new Error(`${command}: exit ${String(answer.exit_code)} ${String(answer.stderr)}`);
      }
      return String(answer.stdout).trim();
    };
    const rclone = await rcloneProcess(options.coldRoot);
    const transfer = async (run: () => Promise<unknown>): Promise<Transfer> => {
      const rcloneBefore = await rclone.cpuMs();
      const benchBefore = process.cpuUsage();
      const ms = await timed(run);
      const bench = process.cpuUsage(benchBefore);
      return {
        ms,
        rcloneCpuMs: (await rclone.cpuMs()) - rcloneBefore,
        benchCpuMs: (bench.user + bench.system) / 1000,
      };
    };

    const rssBefore = await rclone.status('VmRSS');
    const rssPeakReset = rclone.resetPeak();
    const mountWrite = await transfer(() =>
      exec(`head -c ${bytes} /dev/zero > /data/cold/bench.bin`),
    );
    await expectSize(client, `${cold}bench.bin`, bytes);
    const mountWriteLarge = await transfer(() =>
      exec(
        `dd if=/dev/zero of=/data/cold/bench-dd.bin bs=1M count=${bytes} iflag=count_bytes status=none`,
      ),
    );
    const rssPeak = await rclone.status('VmHWM');
    await expectSize(client, `${cold}bench-dd.bin`, bytes);
    const readBefore = await rclone.readBytes();
    let counted = '';
    const mountRead = await transfer(async () => {
      counted = await exec('cat /data/cold/bench.bin | wc -c');
    });
    const rcloneReadBytes = (await rclone.readBytes()) - readBefore;
    if (Number(counted) !== bytes) throw new Error(`the mount read ${counted} bytes, not ${bytes}`);
    progress('cold', `${bytes} bytes written twice and read through /data/cold`);

    const sdkKey = `${cold}sdk.bin`;
    const sdkUpload = await transfer(() =>
      new Upload({
        client,
        params: { Bucket: EMBEDDED_BUCKET, Key: sdkKey, Body: zeros(bytes) },
      }).done(),
    );
    await expectSize(client, sdkKey, bytes);
    let downloaded = 0;
    const sdkDownload = await transfer(async () => {
      const object = await client.send(
        new GetObjectCommand({ Bucket: EMBEDDED_BUCKET, Key: sdkKey }),
      );
      for await (const chunk of object.Body as Readable) downloaded += (chunk as Buffer).length;
    });
    if (downloaded !== bytes) throw new Error(`the SDK read ${downloaded} bytes, not ${bytes}`);
    progress('cold', `${bytes} bytes uploaded and downloaded with the SDK`);

    const listed: string[] = [];
    const mountListFirstMs = await timed(async () => {
      listed.push(await exec('ls /data/cold/many | wc -l'));
    });
    const mountListAgainMs = await timed(async () => {
      listed.push(await exec('ls /data/cold/many | wc -l'));
    });
    let sdkListed = 0;
    const sdkListMs = await timed(async () => {
      sdkListed = (await listKeys(client, manyPrefix)).length;
    });
    for (const count of [...listed.map(Number), sdkListed]) {
      if (count !== files) throw new Error(`a listing counted ${count} files, not ${files}`);
    }
    progress('cold', `${files} files listed through /data/cold and with the SDK`);
    return {
      bytes,
      files,
      mountWrite,
      mountWriteLarge,
      mountRead,
      sdkUpload,
      sdkDownload,
      rcloneReadBytes,
      rcloneRssBefore: rssBefore,
      rcloneRssPeak: rssPeak,
      rssPeakReset,
      mountListFirstMs,
      mountListAgainMs,
      sdkListMs,
    };
  } finally {
    // Through the API: it takes the user's prefix out of the host's mounts, as a sandbox's end does.
    if (sandboxId) await call('DELETE', `/sandboxes/${sandboxId}?graceful=false`);
    // Its home too, which the DELETE saved.
    for (const tier of TIERS) await deletePrefix(client, userKey(user, tier));
    client.destroy();
  }
}

/** `bytes` zeros, 1 MiB at a time: never the whole transfer in memory. */
function zeros(bytes: number): Readable {
  let left = bytes;
  return new Readable({
    read() {
      const size = Math.min(left, CHUNK.length);
      left -= size;
      this.push(size > 0 ? CHUNK.subarray(0, size) : null);
    },
  });
}

async function expectSize(client: S3Client, key: string, bytes: number): Promise<void> {
  const head = await client.send(new HeadObjectCommand({ Bucket: EMBEDDED_BUCKET, Key: key }));
  if (head.ContentLength !== bytes) {
    throw new Error(`${key} holds ${String(head.ContentLength)} bytes in S3, not ${bytes}`);
  }
}

/**
 * Every key under the prefix, a page at a time: ListObjects (v1) with markers, as the service
 * lists, since s3rver's v2 continuation tokens need a cipher OpenSSL 3 no longer offers (a 500 on
 * any listing past one page).
 */
async function listKeys(client: S3Client, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListObjectsCommand({ Bucket: EMBEDDED_BUCKET, Prefix: prefix, Marker: marker }),
    );
    const contents = page.Contents ?? [];
    for (const object of contents) if (object.Key) keys.push(object.Key);
    if (!page.IsTruncated || contents.length === 0) return keys;
    marker = page.NextMarker ?? contents[contents.length - 1]?.Key;
  }
}

async function deletePrefix(client: S3Client, prefix: string): Promise<void> {
  const keys = await listKeys(client, prefix);
  for (let start = 0; start < keys.length; start += 1000) {
    await client.send(
      new DeleteObjectsCommand({
        Bucket: EMBEDDED_BUCKET,
        Delete: { Objects: keys.slice(start, start + 1000).map((Key) => ({ Key })) },
      }),
    );
  }
}

/**
 * Unmounts what the bench's servers left under their cold root, deepest first: the slots of
 * sandboxes whose containers the bench removed behind their back (a later server's sweep would
 * release them; this root has none), then the bucket's mount, which ends its rclone.
 */
export async function unmountColdRoot(root: string): Promise<void> {
  const table = parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
  const under = table.filter(
    (entry) => entry.mountPoint === root || entry.mountPoint.startsWith(`${root}/`),
  );
  for (const entry of under.reverse()) {
    await run('umount', ['--lazy', entry.mountPoint]).catch((error: unknown) =>
      progress('cold', `${entry.mountPoint} stays mounted: ${String(error)}`),
    );
  }
}

/** The host's rclone process of the cold tier, read from /proc (the service writes its pid). */
async function rcloneProcess(coldRoot: string) {
  const pid = Number(await readFile(join(coldRoot, 'rclone.pid'), 'utf8'));
  const proc = (name: string) => readFile(`/proc/${pid}/${name}`, 'utf8');
  return {
    /** A `Vm...` line of its status, in bytes. */
    status: async (field: string) => {
      const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(await proc('status'))?.[1];
      if (kib === undefined) throw new Error(`no ${field} for rclone (pid ${pid})`);
      return Number(kib) * 1024;
    },
    /** Its CPU time so far, user and system (utime and stime of its stat, in clock ticks). */
    cpuMs: async () => {
      const fields = (await proc('stat')).split(') ')[1]?.split(' ') ?? [];
      return (Number(fields[11]) + Number(fields[12])) * (1000 / CLOCK_TICKS);
    },
    /** Bytes it read with read() and the like: its sockets to S3 and /dev/fuse. */
    readBytes: async () => Number(/^rchar: (\d+)/m.exec(await proc('io'))?.[1] ?? NaN),
    /** Sets its peak RSS (VmHWM) to its RSS now (Linux 4.0 and later; root). */
    resetPeak: () => resetPeakRss([pid]),
  };
}

/** The rows as the bench prints them. */
export function coldRows(timings: ColdTimings): string[] {
  if ('unavailable' in timings) {
    return [`cold tier                unavailable, skipped: ${timings.unavailable}`];
  }
  const { bytes, files } = timings;
  const mib = (count: number) => count / 1024 / 1024;
  const size = `${mib(bytes).toFixed(0)} MiB`;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1).padStart(6)} s`;
  const side = (one: Transfer) =>
    `${seconds(one.ms)} ${(mib(bytes) / (one.ms / 1000)).toFixed(1).padStart(6)} MiB/s`;
  const transfer = (name: string, mount: Transfer, sdk: Transfer, note = '') =>
    `${name.padEnd(24)} mount ${side(mount)} | sdk ${side(sdk)} | ratio ${(mount.ms / sdk.ms).toFixed(2)}x${note}`;
  const cpu = (name: string, mount: Transfer, sdk: Transfer) =>
    `${name.padEnd(24)} mount: rclone ${seconds(mount.rcloneCpuMs)}, bench (S3) ${seconds(mount.benchCpuMs)} | sdk: bench (S3, SDK) ${seconds(sdk.benchCpuMs)}`;
  const ms = (value: number) => `${value.toFixed(1).padStart(8)} ms`;
  const peakSince = timings.rssPeakReset ? '' : ' (since rclone started: could not be reset)';
  const { mountWrite, mountWriteLarge, mountRead, sdkUpload, sdkDownload } = timings;
  return [
    transfer(`cold write ${size}, 4K`, mountWrite, sdkUpload, ' (head -c: 4 KiB writes)'),
    transfer(`cold write ${size}, 1M`, mountWriteLarge, sdkUpload, ' (dd: 1 MiB writes)'),
    transfer(
      `cold read ${size}`,
      mountRead,
      sdkDownload,
      ` (rclone read ${mib(timings.rcloneReadBytes).toFixed(0)} MiB)`,
    ),
    `${`cold list ${files} files`.padEnd(24)} mount ${ms(timings.mountListFirstMs)} (again ${ms(timings.mountListAgainMs)}) | sdk ${ms(timings.sdkListMs)} | ratio ${(timings.mountListFirstMs / timings.sdkListMs).toFixed(2)}x`,
    cpu('cold write CPU, 4K', mountWrite, sdkUpload),
    cpu('cold write CPU, 1M', mountWriteLarge, sdkUpload),
    cpu('cold read CPU', mountRead, sdkDownload),
    `${'rclone RSS, cold writes'.padEnd(24)} ${mib(timings.rcloneRssBefore).toFixed(1)} MiB before, ${mib(timings.rcloneRssPeak).toFixed(1)} MiB at the peak${peakSince}`,
  ];
}
