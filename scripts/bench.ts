import { mkdtempSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Duplex } from 'node:stream';
import Docker from 'dockerode';
import { READY_LINE } from '../lib/adapters/docker/readiness.js';
import { loadConfig } from '../lib/config.js';
import { startEmbeddedS3 } from '../lib/embeddedS3.js';
import { benchHomes, timed, type HomeTimings } from './benchHome.js';
import { benchRegistry, type RegistryTimings } from './benchRegistry.js';
import { freePort, startServer } from './serverProcess.js';

/**
 * `npm run bench`: create-to-ready and exec `echo hi` through the HTTP API, next to the same
 * operations done directly with dockerode, interleaved in one run so both see the same machine.
 */
const CREATES = Number(process.env.BENCH_CREATES ?? 20);
const EXECS = Number(process.env.BENCH_EXECS ?? 200);
const IMAGE = loadConfig().SANDBOX_IMAGE;
const HOME_ROUNDS = Number(process.env.BENCH_HOME_ROUNDS ?? 3);
/**
 * The pause before each timed operation, on both sides: an agent thinks between commands, and the
 * pause lets what one operation left running in the background settle before the next is timed.
 */
const PAUSE_MS = Number(process.env.BENCH_PAUSE_MS ?? 100);
const BACK_TO_BACK = Number(process.env.BENCH_BACK_TO_BACK ?? 50);
const USER = `bench-${process.pid}`;

const docker = new Docker();

/** node:http with kept-alive connections: the lightest HTTP client Node has. */
const agent = new Agent({ keepAlive: true });

function call(base: string, method: string, path: string, json?: unknown) {
  const body = json === undefined ? undefined : JSON.stringify(json);
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const request = httpRequest(
      `${base}${path}`,
      {
        method,
        agent,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if ((response.statusCode ?? 500) >= 300) {
            reject(new Error(`${method} ${path}: ${response.statusCode} ${text}`));
          } else {
            resolve(text ? (JSON.parse(text) as Record<string, unknown>) : {});
          }
        });
      },
    );
    request.once('error', reject);
    request.end(body);
  });
}

async function rawCreateReady(name: string): Promise<Docker.Container> {
  const container = await docker.createContainer({
    name,
    Image: IMAGE,
    Labels: { 'matrx.sandbox_id': name, 'matrx.user_id': USER },
    // The limits the API gives its sandboxes by default, so both sides start the same container.
    HostConfig: {
      NetworkMode: 'none',
      RestartPolicy: { Name: 'no' },
      NanoCpus: 2e9,
      Memory: 4 * 1024 ** 3,
    },
  });
  const output = (await container.attach({ stream: true, stdout: true, stderr: true })) as Duplex;
  const ready = new Promise<void>((resolve) => {
    let seen = '';
    output.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.includes(READY_LINE)) resolve();
    });
  });
  await container.start();
  await ready;
  output.destroy();
  return container;
}

async function rawExec(container: Docker.Container): Promise<void> {
  const exec = await container.exec({
    Cmd: ['bash', '-c', 'echo hi'],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  docker.modem.demuxStream(stream, new PassThrough().resume(), new PassThrough().resume());
  await new Promise((resolve) => stream.once('end', resolve));
  await exec.inspect();
}

const pause = () => new Promise((resolve) => setTimeout(resolve, PAUSE_MS));

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { median: at(0.5), p95: at(0.95) };
}

function row(name: string, api: number[], raw: number[]) {
  const a = stats(api);
  const r = stats(raw);
  const fmt = (ms: number) => ms.toFixed(1).padStart(8);
  console.log(
    `${name.padEnd(24)} api median ${fmt(a.median)} ms p95 ${fmt(a.p95)} ms | raw median ${fmt(r.median)} ms p95 ${fmt(r.p95)} ms | ratio ${(a.median / r.median).toFixed(2)}x, diff ${(a.median - r.median).toFixed(1)} ms`,
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'matrx-bench-'));
  // The bench's own S3 server, so the raw S3 figures use the very same one as the API.
  const s3 = await startEmbeddedS3(join(dir, 's3'), await freePort());
  const server = await startServer({
    logFile: join(dir, 'server.log'),
    env: { ...s3.env, MATRX_DOCKER_NETWORK: 'none', MATRX_LOG_LEVEL: 'WARNING' },
  });
  const base = server.baseUrl;
  const apiCreate: number[] = [];
  const rawCreate: number[] = [];
  const apiExec: number[] = [];
  const rawExecs: number[] = [];
  const apiBackToBack: number[] = [];
  const rawBackToBack: number[] = [];
  let homes: HomeTimings | undefined;
  let registry: RegistryTimings | undefined;
  try {
    // Warm both paths once: first calls load handlers and page the image in.
    const warm = await call(base, 'POST', '/sandboxes', { user_id: USER });
    await call(base, 'DELETE', `/sandboxes/${String(warm.sandbox_id)}?graceful=false`);
    await (await rawCreateReady(`${USER}-warm`)).remove({ force: true });

    for (let i = 0; i < CREATES; i += 1) {
      let id = '';
      await pause();
      apiCreate.push(
        await timed(async () => {
          id = String((await call(base, 'POST', '/sandboxes', { user_id: USER })).sandbox_id);
        }),
      );
      await call(base, 'DELETE', `/sandboxes/${id}?graceful=false`);
      let container: Docker.Container | undefined;
      await pause();
      rawCreate.push(
        await timed(async () => {
          container = await rawCreateReady(`${USER}-${i}`);
        }),
      );
      await container?.remove({ force: true });
    }

    // Both sides exec in the same container: the API's sandbox.
    const sandbox = await call(base, 'POST', '/sandboxes', { user_id: USER });
    const sandboxId = String(sandbox.sandbox_id);
    const container = docker.getContainer(String(sandbox.container_id));
    for (let i = 0; i < 5; i += 1) {
      await call(base, 'POST', `/sandboxes/${sandboxId}/exec`, { command: 'echo hi' });
      await rawExec(container);
    }
    const apiOnce = () =>
      call(base, 'POST', `/sandboxes/${sandboxId}/exec`, { command: 'echo hi' });
    // Alternating which side goes first cancels what one call leaves for the next.
    const apiTimed = async (samples: number[]) => {
      await pause();
      samples.push(await timed(apiOnce));
    };
    const rawTimed = async (samples: number[]) => {
      await pause();
      samples.push(await timed(() => rawExec(container)));
    };
    for (let i = 0; i < EXECS; i += 1) {
      if (i % 2 === 0) {
        await apiTimed(apiExec);
        await rawTimed(rawExecs);
      } else {
        await rawTimed(rawExecs);
        await apiTimed(apiExec);
      }
    }
    // No pause: each command follows the previous one's answer at once.
    await pause();
    for (let i = 0; i < BACK_TO_BACK; i += 1) apiBackToBack.push(await timed(apiOnce));
    await pause();
    for (let i = 0; i < BACK_TO_BACK; i += 1) {
      rawBackToBack.push(await timed(() => rawExec(container)));
    }
    await call(base, 'DELETE', `/sandboxes/${sandboxId}?graceful=false`);
    homes = await benchHomes(
      (method, path, json) => call(base, method, path, json),
      s3,
      USER,
      HOME_ROUNDS,
    );
    await server.stop();
    registry = await benchRegistry(
      (registryBase) => (method, path, json) => call(registryBase, method, path, json),
      dir,
      USER,
    );
  } finally {
    agent.destroy();
    await server.stop();
    await s3.close();
    const left = (
      await docker.listContainers({ all: true, filters: { label: ['matrx.user_id'] } })
    ).filter((c) => (c.Labels['matrx.user_id'] ?? '').startsWith(USER));
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  }

  console.log(
    `\nmatrx bench: ${CREATES} creates, ${EXECS} execs ${PAUSE_MS} ms apart and ${BACK_TO_BACK} back-to-back, ${HOME_ROUNDS} home rounds, image ${IMAGE}, network none`,
  );
  row('create-to-ready', apiCreate, rawCreate);
  row('exec echo hi', apiExec, rawExecs);
  row('exec back-to-back', apiBackToBack, rawBackToBack);
  if (homes) {
    row('home save 50 MB', homes.save, homes.rawUpload);
    row('home restore 50 MB', homes.restore, homes.rawDownload);
  }
  if (registry) {
    row('list 10,000 rows', registry.list, registry.rawList);
    row('get 1 of 10,000 rows', registry.get, registry.rawGet);
    row('reconcile 1,000', registry.pass, registry.rawReads);
    const pass = stats(registry.pass);
    console.log(
      `targets: reconcile pass over 1,000 < 1000 ms: ${pass.median < 1000 ? 'met' : 'MISSED'} (${registry.dockerCallsPerPass} Docker call(s) per pass)`,
    );
  }
  const createRatio = stats(apiCreate).median / stats(rawCreate).median;
  const execDiff = stats(apiExec).median - stats(rawExecs).median;
  console.log(
    `targets: create <= 1.25x raw: ${createRatio <= 1.25 ? 'met' : 'MISSED'}; exec <= raw + 5 ms: ${execDiff <= 5 ? 'met' : 'MISSED'}`,
  );
  if (homes) {
    const saveRatio = stats(homes.save).median / stats(homes.rawUpload).median;
    const restoreRatio = stats(homes.restore).median / stats(homes.rawDownload).median;
    console.log(
      `targets: save <= 1.5x raw upload: ${saveRatio <= 1.5 ? 'met' : 'MISSED'}; restore <= 1.5x raw download: ${restoreRatio <= 1.5 ? 'met' : 'MISSED'}`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
