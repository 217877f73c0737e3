import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
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

export interface ColdFigures {
  bytes: number;
  files: number;
  mountWriteMs: number;
  mountReadMs: number;
  sdkUploadMs: number;
  sdkDownloadMs: number;
  /** What rclone read during the mount's read: the whole file from S3, not the page cache. */
  rcloneReadBytes: number;
  /** rclone's CPU time (user and system) during the mount's write and read. */
  rcloneWriteCpuMs: number;
  rcloneReadCpuMs: number;
  /** rclone's RSS before the write through the mount, and its peak during it. */
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
 * The cold tier: `bytes` written to /data/cold with `head -c` and read back with `cat | wc -c` in
 * a sandbox, next to an upload (lib-storage's multipart) and a download of as many bytes with the
 * SDK from the host, to the same S3 server; then a first listing of a directory of `files`
 * objects through the mount next to a ListObjectsV2 of its prefix (every page). The objects are
 * put before the sandbox exists, so the mount has never listed that directory.
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

    const rssBefore = await rclone.status('VmRSS');
    const rssPeakReset = await rclone.resetPeak();
    let cpuBefore = await rclone.cpuMs();
    const mountWriteMs = await timed(() =>
      exec(`head -c ${bytes} /dev/zero > /data/cold/bench.bin`),
    );
    const rcloneWriteCpuMs = (await rclone.cpuMs()) - cpuBefore;
    const rssPeak = await rclone.status('VmHWM');
    await expectSize(client, `${cold}bench.bin`, bytes);
    const readBefore = await rclone.readBytes();
    cpuBefore = await rclone.cpuMs();
    let counted = '';
    const mountReadMs = await timed(async () => {
      counted = await exec('cat /data/cold/bench.bin | wc -c');
    });
    const rcloneReadCpuMs = (await rclone.cpuMs()) - cpuBefore;
    const rcloneReadBytes = (await rclone.readBytes()) - readBefore;
    if (Number(counted) !== bytes) throw new Error(`the mount read ${counted} bytes, not ${bytes}`);
    progress('cold', `${bytes} bytes written and read through /data/cold`);

    const sdkKey = `${cold}sdk.bin`;
    const sdkUploadMs = await timed(() =>
      new Upload({
        client,
        params: { Bucket: EMBEDDED_BUCKET, Key: sdkKey, Body: zeros(bytes) },
      }).done(),
    );
    await expectSize(client, sdkKey, bytes);
    let downloaded = 0;
    const sdkDownloadMs = await timed(async () => {
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
      mountWriteMs,
      mountReadMs,
      sdkUploadMs,
      sdkDownloadMs,
      rcloneReadBytes,
      rcloneWriteCpuMs,
      rcloneReadCpuMs,
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
    resetPeak: async () => {
      try {
        await writeFile(`/proc/${pid}/clear_refs`, '5');
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** The rows as the bench prints them. */
export function coldRows(timings: ColdTimings): string[] {
  if ('unavailable' in timings)
    return [`cold tier                unavailable, skipped: ${timings.unavailable}`];
  const mib = (bytes: number) => bytes / 1024 / 1024;
  const side = (ms: number) =>
    `${(ms / 1000).toFixed(1).padStart(6)} s ${(mib(timings.bytes) / (ms / 1000)).toFixed(1).padStart(6)} MiB/s`;
  const size = `${mib(timings.bytes).toFixed(0)} MiB`;
  const fmt = (ms: number) => ms.toFixed(1).padStart(8);
  return [
    `cold write ${size.padEnd(13)} mount ${side(timings.mountWriteMs)} | sdk ${side(timings.sdkUploadMs)} | ratio ${(timings.mountWriteMs / timings.sdkUploadMs).toFixed(2)}x`,
    `cold read ${size.padEnd(14)} mount ${side(timings.mountReadMs)} | sdk ${side(timings.sdkDownloadMs)} | ratio ${(timings.mountReadMs / timings.sdkDownloadMs).toFixed(2)}x (rclone read ${mib(timings.rcloneReadBytes).toFixed(0)} MiB)`,
    `cold list ${timings.files} files`.padEnd(25) +
      `mount ${fmt(timings.mountListFirstMs)} ms (again ${fmt(timings.mountListAgainMs)} ms) | sdk ${fmt(timings.sdkListMs)} ms | ratio ${(timings.mountListFirstMs / timings.sdkListMs).toFixed(2)}x`,
    `rclone RSS, cold write   ${mib(timings.rcloneRssBefore).toFixed(1)} MiB before, ${mib(timings.rcloneRssPeak).toFixed(1)} MiB at the peak${timings.rssPeakReset ? '' : ' (since rclone started: the peak could not be reset)'}`,
    `rclone CPU               ${(timings.rcloneWriteCpuMs / 1000).toFixed(1)} s during the write, ${(timings.rcloneReadCpuMs / 1000).toFixed(1)} s during the read`,
  ];
}
