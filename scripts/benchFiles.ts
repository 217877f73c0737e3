import { randomBytes } from 'node:crypto';
import { request as httpRequest, type Agent } from 'node:http';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { progress, sleep, stats, timed } from './benchClient.js';
import { resetPeakRss, statusSum, treePids, treeRss } from './benchScale.js';

/** One timed operation: the API's samples next to raw Docker's, and its target. */
export interface FileRow {
  name: string;
  api: number[];
  raw: number[];
  /** What the API must stay within, from the raw median: `ratio` times it, or it plus `plusMs`. */
  target: { ratio: number } | { plusMs: number } | undefined;
}

export interface FileTimings {
  rows: FileRow[];
  /** The service's RSS (launcher and serverless-offline) before the 50 MiB rounds, and its peak. */
  rssBefore: number;
  rssPeak: number;
}

const SIZES = [
  { name: '1 KiB', bytes: 1024, target: { plusMs: 5 } },
  { name: '1 MiB', bytes: 1024 * 1024, target: { ratio: 1.5 } },
  { name: '50 MiB', bytes: 50 * 1024 * 1024, target: { ratio: 1.5 } },
];
const DIR = '/home/agent/bench-files';
const ENTRIES = 1000;
const AGENT_IDS = { uid: 1000, gid: 1000 };

/**
 * Files through the API next to the engine's own archive calls on the same bytes and container:
 * a write (PUT .../files) next to a putArchive of a tar holding the file, a read (GET .../files)
 * next to a getArchive read to its end; a list of a directory of 1,000 entries and a search over
 * 1,000 files next to a Docker exec of the command a caller would run instead (`find -printf`,
 * `rg`). Sides alternate, each after a pause. `rounds` per size, `largeRounds` for 50 MiB.
 */
export async function benchFiles(
  base: string,
  agent: Agent,
  docker: Docker,
  sandbox: { sandboxId: string; containerId: string },
  options: { rounds: number; largeRounds: number; pauseMs: number; serverPid: number },
): Promise<FileTimings> {
  const container = docker.getContainer(sandbox.containerId);
  const files = `/sandboxes/${sandbox.sandboxId}/files`;
  const rows: FileRow[] = [];
  const pause = () => sleep(options.pauseMs);
  const alternate = async (
    row: FileRow,
    round: number,
    api: () => Promise<unknown>,
    raw: () => Promise<unknown>,
  ) => {
    const sides: [number[], () => Promise<unknown>][] = [
      [row.api, api],
      [row.raw, raw],
    ];
    if (round % 2 === 1) sides.reverse();
    for (const [samples, run] of sides) {
      await pause();
      samples.push(await timed(run));
    }
  };
  let rssBefore = 0;
  let rssPeak = 0;
  for (const size of SIZES) {
    const large = size.bytes > 1024 * 1024;
    const rounds = large ? options.largeRounds : options.rounds;
    if (rounds === 0) continue;
    const bytes = randomBytes(size.bytes);
    const write: FileRow = { name: `write ${size.name}`, api: [], raw: [], target: size.target };
    const read: FileRow = { name: `read ${size.name}`, api: [], raw: [], target: size.target };
    const apiPath = `${DIR}/api-${size.bytes}`;
    const rawName = `raw-${size.bytes}`;
    if (large) rssBefore = treeRss(options.serverPid);
    const sampler = large ? peakRss(options.serverPid) : undefined;
    // One of each first: the first calls load handlers and open the channel.
    await send(base, agent, 'PUT', `${files}?path=${apiPath}`, bytes);
    await rawPut(container, rawName, bytes);
    for (let round = 0; round < rounds; round += 1) {
      await alternate(
        write,
        round,
        () => send(base, agent, 'PUT', `${files}?path=${apiPath}`, bytes),
        () => rawPut(container, rawName, bytes),
      );
      await alternate(
        read,
        round,
        async () => check(await send(base, agent, 'GET', `${files}?path=${apiPath}`), bytes),
        async () => check(await rawGet(container, `${DIR}/${rawName}`), bytes),
      );
    }
    if (sampler) rssPeak = Math.max(rssBefore, sampler.stop());
    rows.push(write, read);
    progress('files', `${size.name}: ${rounds} writes and reads on each side`);
  }

  if (options.rounds > 0) {
    await exec(
      container,
      `mkdir -p ${DIR}/many && cd ${DIR}/many && for i in $(seq -w 1 ${ENTRIES}); do printf 'line one\\nneedle %s here\\nline three\\n' $i > f$i.txt; done`,
    );
    const list: FileRow = { name: 'list 1,000 entries', api: [], raw: [], target: undefined };
    const search: FileRow = { name: 'search 1,000 files', api: [], raw: [], target: undefined };
    const searchBody = Buffer.from(JSON.stringify({ pattern: 'needle \\d+', path: `${DIR}/many` }));
    for (let round = 0; round < options.rounds; round += 1) {
      await alternate(
        list,
        round,
        () => send(base, agent, 'GET', `${files}/list?path=${DIR}/many`),
        () =>
          exec(container, `find ${DIR}/many -mindepth 1 -maxdepth 1 -printf '%y %s %m %T@ %p\\n'`),
      );
      await alternate(
        search,
        round,
        () => send(base, agent, 'POST', `${files}/search`, searchBody, 'application/json'),
        () => exec(container, `rg -n --no-heading 'needle \\d+' ${DIR}/many`),
      );
    }
    rows.push(list, search);
    progress('files', `list and search: ${options.rounds} on each side`);
  }
  return { rows, rssBefore, rssPeak };
}

/** The API's answer's body; anything but a 2xx is an error naming the status. */
function send(
  base: string,
  agent: Agent,
  method: string,
  path: string,
  body?: Buffer,
  contentType = 'application/octet-stream',
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      `${base}${path}`,
      {
        method,
        agent,
        headers: body ? { 'content-type': contentType, 'content-length': body.length } : {},
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const answer = Buffer.concat(chunks);
          if ((response.statusCode ?? 500) >= 300) {
            reject(
              new Error(
                `${method} ${path}: ${response.statusCode} ${answer.toString().slice(0, 200)}`,
              ),
            );
          } else resolve(answer);
        });
      },
    );
    request.once('error', reject);
    request.end(body);
  });
}

function check(read: Buffer, bytes: Buffer): void {
  if (!read.equals(bytes))
    throw new Error(`read ${read.length} bytes, not the ${bytes.length} written`);
}

async function rawPut(container: Docker.Container, name: string, bytes: Buffer): Promise<void> {
  const pack = tar.pack();
  pack.entry({ name, mode: 0o644, ...AGENT_IDS }, bytes);
  pack.finalize();
  const response = await container.putArchive(Readable.from(pack), { path: DIR });
  (response as unknown as Readable).resume?.();
}

async function rawGet(container: Docker.Container, path: string): Promise<Buffer> {
  const stream = (await container.getArchive({ path })) as Readable;
  for await (const entry of stream.pipe(tar.extract())) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    stream.destroy();
    return Buffer.concat(chunks);
  }
  throw new Error(`no entry in the archive of ${path}`);
}

async function exec(container: Docker.Container, command: string): Promise<void> {
  const started = await container.exec({
    Cmd: ['bash', '-c', command],
    User: 'agent',
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await started.start({ hijack: true, stdin: false });
  stream.resume();
  await new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

/**
 * The peak RSS of the service's processes from now on, as the kernel keeps it (VmHWM, reset
 * through clear_refs): no polling of /proc beside the timed calls, which took the bench's own
 * event loop away from them.
 */
function peakRss(pid: number) {
  const pids = treePids(pid);
  resetPeakRss(pids);
  return { stop: () => statusSum(pids, 'VmHWM') };
}

/** The rows as the bench prints them, then whether each target was met. */
export function fileRows(timings: FileTimings): string[] {
  const lines: string[] = [];
  const targets: string[] = [];
  const fmt = (ms: number) => ms.toFixed(1).padStart(8);
  for (const row of timings.rows) {
    if (row.api.length === 0 || row.raw.length === 0) continue;
    const api = stats(row.api);
    const raw = stats(row.raw);
    lines.push(
      `${row.name.padEnd(24)} api median ${fmt(api.median)} ms p95 ${fmt(api.p95)} ms | raw median ${fmt(raw.median)} ms p95 ${fmt(raw.p95)} ms | ratio ${(api.median / raw.median).toFixed(2)}x, diff ${(api.median - raw.median).toFixed(1)} ms`,
    );
    if (row.target && 'ratio' in row.target) {
      const ok = api.median <= raw.median * row.target.ratio;
      targets.push(`${row.name} <= ${row.target.ratio}x raw: ${ok ? 'met' : 'MISSED'}`);
    } else if (row.target) {
      const ok = api.median <= raw.median + row.target.plusMs;
      targets.push(`${row.name} <= raw + ${row.target.plusMs} ms: ${ok ? 'met' : 'MISSED'}`);
    }
  }
  if (timings.rssPeak > 0) {
    const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
    lines.push(
      `service RSS, 50 MiB files  ${mib(timings.rssBefore)} MiB before, ${mib(timings.rssPeak)} MiB at the peak`,
    );
  }
  if (targets.length > 0) lines.push(`targets: ${targets.join('; ')}`);
  return lines;
}
