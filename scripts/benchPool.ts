import type { Agent } from 'node:http';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { EmbeddedS3 } from '../lib/embeddedS3.js';
import { apiCall, progress, sleep, timed, type Call } from './benchClient.js';
import { rawCreateReady, removeContainer } from './benchRaw.js';
import { startServer, type RunningServer } from './serverProcess.js';

export interface PoolTimings {
  poolSize: number;
  burst: number;
  /** Create-to-ready with a ready pool container waiting: a user with no home yet. */
  newUser: number[];
  /** The same for a user whose small home is restored. */
  returning: number[];
  /** Raw dockerode create-to-ready, interleaved with the two above. */
  raw: number[];
  /** Each request of bursts of `burst` creates at once, with the pool full and with no pool. */
  burstPool: number[];
  burstNoPool: number[];
}

export interface PoolBenchOptions {
  docker: Docker;
  agent: Agent;
  s3: EmbeddedS3;
  dir: string;
  image: string;
  user: string;
  memoryBytes: number;
  poolSize: number;
  rounds: number;
  burst: number;
  burstRounds: number;
  pauseMs: number;
}

/** A returning user's home: small files, as an agent's notes and config are. */
const HOME_FILES = 20;
const HOME_FILE_BYTES = 2048;

/**
 * Two servers side by side on the same S3: one with a warm pool, one without. Creates through
 * the pool (a new user, a returning one) next to raw dockerode creates; then bursts past the
 * pool on one and the same bursts on the other, alternating, so both see the same machine.
 * Sandboxes' containers are removed directly: ending them through the API would save homes.
 */
export async function benchPool(options: PoolBenchOptions): Promise<PoolTimings> {
  const { docker, user, poolSize } = options;
  const hosts = { pool: `bench-pool-${process.pid}`, none: `bench-nopool-${process.pid}` };
  const timings: PoolTimings = {
    poolSize,
    burst: options.burst,
    newUser: [],
    returning: [],
    raw: [],
    burstPool: [],
    burstNoPool: [],
  };
  const servers: RunningServer[] = [];
  const start = async (hostId: string, size: number) => {
    const server = await startServer({
      logFile: join(options.dir, `server-${hostId}.log`),
      env: {
        ...options.s3.env,
        MATRX_HOST_ID: hostId,
        MATRX_DOCKER_NETWORK: 'none',
        MATRX_LOG_LEVEL: 'WARNING',
        MATRX_WARM_POOL_SIZE: String(size),
      },
    });
    servers.push(server);
    return apiCall(server.baseUrl, options.agent);
  };
  try {
    progress('pool', `starting a server with a pool of ${poolSize} and one without`);
    const [pooled, unpooled] = await Promise.all([
      start(hosts.pool, poolSize),
      start(hosts.none, 0),
    ]);
    const full = () => poolFull(pooled, poolSize);
    const createAndRemove = async (call: Call, userId: string) => {
      const created = await call('POST', '/sandboxes', { user_id: userId });
      return () => removeContainer(docker, String(created.container_id));
    };

    await full();
    const returning = `${user}-pool-returning`;
    const writer = await pooled('POST', '/sandboxes', { user_id: returning });
    await pooled('POST', `/sandboxes/${String(writer.sandbox_id)}/exec`, {
      command: `mkdir -p notes && for i in $(seq 1 ${HOME_FILES}); do head -c ${HOME_FILE_BYTES} /dev/urandom > notes/n$i; done`,
    });
    await pooled('DELETE', `/sandboxes/${String(writer.sandbox_id)}`);
    // Warm both paths once.
    await full();
    await (
      await createAndRemove(pooled, `${user}-pool-warm`)
    )();
    await removeContainer(docker, (await rawCreate(options, 'warm')).id);

    for (let round = 0; round < options.rounds; round += 1) {
      let remove: () => Promise<void> = async () => undefined;
      await full();
      await sleep(options.pauseMs);
      timings.newUser.push(
        await timed(async () => {
          remove = await createAndRemove(pooled, `${user}-pool-new-${round}`);
        }),
      );
      await remove();
      await full();
      await sleep(options.pauseMs);
      timings.returning.push(
        await timed(async () => {
          remove = await createAndRemove(pooled, returning);
        }),
      );
      await remove();
      // Not beside the pool's top-up after the last claim: raw Docker on a quiet engine.
      await full();
      await sleep(options.pauseMs);
      let container: Docker.Container | undefined;
      timings.raw.push(
        await timed(async () => {
          container = await rawCreate(options, String(round));
        }),
      );
      if (container) await removeContainer(docker, container.id);
      if ((round + 1) % 5 === 0) progress('pool', `${round + 1}/${options.rounds} creates`);
    }

    for (let round = 0; round < options.burstRounds; round += 1) {
      progress(
        'pool',
        `burst ${round + 1}/${options.burstRounds}: ${options.burst} creates at once`,
      );
      await full();
      await sleep(options.pauseMs);
      timings.burstPool.push(...(await burst(pooled, options, `${user}-pool-burst-${round}`)));
      await full();
      await sleep(options.pauseMs);
      timings.burstNoPool.push(
        ...(await burst(unpooled, options, `${user}-nopool-burst-${round}`)),
      );
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    for (const hostId of Object.values(hosts)) {
      const left = await docker.listContainers({
        all: true,
        filters: { label: [`matrx.host_id=${hostId}`] },
      });
      await Promise.all(left.map((container) => removeContainer(docker, container.Id)));
    }
  }
  return timings;
}

function rawCreate(options: PoolBenchOptions, name: string) {
  return rawCreateReady(options.docker, {
    name: `${options.user}-poolraw-${name}`,
    image: options.image,
    user: options.user,
    memoryBytes: options.memoryBytes,
  });
}

/** Every create's own time, all sent at once; then their containers removed. */
async function burst(call: Call, options: PoolBenchOptions, prefix: string): Promise<number[]> {
  const containers: string[] = [];
  const samples = await Promise.all(
    Array.from({ length: options.burst }, (_, i) =>
      timed(async () => {
        const created = await call('POST', '/sandboxes', { user_id: `${prefix}-${i}` });
        containers.push(String(created.container_id));
      }),
    ),
  );
  await Promise.all(containers.map((id) => removeContainer(options.docker, id)));
  return samples;
}

async function poolFull(call: Call, size: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const health = (await call('GET', '/health')) as { pool?: { ready?: number } };
    if ((health.pool?.ready ?? 0) >= size) return;
    if (Date.now() > deadline) throw new Error(`the pool did not fill to ${size} in 120 s`);
    await sleep(100);
  }
}
