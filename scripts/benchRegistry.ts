import { join } from 'node:path';
import Docker from 'dockerode';
import { DockerRuntime } from '../lib/adapters/docker/dockerRuntime.js';
import { migrate } from '../lib/adapters/postgres/migrations.js';
import { createPool, PostgresSandboxStore } from '../lib/adapters/postgres/postgresSandboxStore.js';
import { createLogger } from '../lib/logger.js';
import type { ContainerRuntime } from '../lib/ports.js';
import { loadConfig } from '../lib/config.js';
import { composeServices } from '../lib/services.js';
import { inParallel, progress, timed, type Call } from './benchClient.js';
import { createDatabase, startPostgresServer, type PostgresServer } from './postgresServer.js';
import { startServer } from './serverProcess.js';

const PASS_SANDBOXES = 1_000;
const LIST_ROUNDS = 20;
const GET_ROUNDS = 200;
const PASS_ROUNDS = 5;

export interface RegistryTimings {
  list: number[];
  rawList: number[];
  get: number[];
  rawGet: number[];
  pass: number[];
  rawReads: number[];
  dockerCallsPerPass: number;
}

/** The Postgres the bench uses: one it is given, or a throwaway one of its own. */
async function benchPostgres(): Promise<{ url: string; server?: PostgresServer }> {
  const given = process.env.MATRX_BENCH_DATABASE_URL ?? process.env.MATRX_TEST_DATABASE_URL;
  if (given) return { url: given };
  const server = await startPostgresServer();
  return { url: server.url, server };
}

/** Counts the calls made to the engine, to show a pass makes a constant number of them. */
function counting(runtime: ContainerRuntime): { runtime: ContainerRuntime; calls: () => number } {
  let calls = 0;
  const proxy = new Proxy(runtime, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { runtime: proxy, calls: () => calls };
}

/**
 * The registry on Postgres: GET /sandboxes and GET /sandboxes/{id} with `rows` rows, next to the
 * same reads made directly with pg; and one reconcile pass over 1,000 sandboxes that need nothing
 * (created containers, rows still within their create window), next to the two raw reads a pass
 * cannot do without (one container list, one query).
 */
export async function benchRegistry(
  call: (base: string) => Call,
  workDir: string,
  user: string,
  rows: number,
): Promise<RegistryTimings> {
  const postgres = await benchPostgres();
  const database = await createDatabase(postgres.url, `matrx_bench_${process.pid}`);
  const logger = createLogger('WARNING', 'json');
  const pool = createPool({ url: database.url, maxConnections: 4, connectTimeoutMs: 5000 }, logger);
  const docker = new Docker();
  const hostId = `${user}-host`;
  const timings: RegistryTimings = {
    list: [],
    rawList: [],
    get: [],
    rawGet: [],
    pass: [],
    rawReads: [],
    dockerCallsPerPass: 0,
  };
  const server = await (async () => {
    await migrate(pool);
    await pool.query(
      `INSERT INTO sandboxes (sandbox_id, user_id, status, container_id, created_at, hot_path,
         cold_path, host_id)
       SELECT 'sbx-' || lpad(to_hex(n), 12, '0'), 'user-' || (n % 100), 'stopped', 'c' || n,
         NOW() - n * INTERVAL '1 second', '/home/agent', '/data/cold', 'elsewhere'
       FROM generate_series(1, $1) AS n`,
      [rows],
    );
    return startServer({
      logFile: join(workDir, 'registry-server.log'),
      env: {
        MATRX_SANDBOX_STORE: 'postgres',
        MATRX_DATABASE_URL: database.url,
        MATRX_DOCKER_NETWORK: 'none',
        MATRX_LOG_LEVEL: 'WARNING',
      },
    });
  })();
  const api = call(server.baseUrl);
  try {
    const someId = `sbx-${Math.ceil(rows / 2)
      .toString(16)
      .padStart(12, '0')}`;
    await api('GET', '/sandboxes');
    await api('GET', `/sandboxes/${someId}`);
    for (let i = 0; i < LIST_ROUNDS; i += 1) {
      timings.list.push(await timed(() => api('GET', '/sandboxes')));
      timings.rawList.push(
        await timed(() => pool.query('SELECT * FROM sandboxes ORDER BY created_at, sandbox_id')),
      );
    }
    for (let i = 0; i < GET_ROUNDS; i += 1) {
      timings.get.push(await timed(() => api('GET', `/sandboxes/${someId}`)));
      timings.rawGet.push(
        await timed(() => pool.query('SELECT * FROM sandboxes WHERE sandbox_id = $1', [someId])),
      );
    }

    // 1,000 sandboxes of one host: their rows in creating, their containers created.
    const ids = Array.from(
      { length: PASS_SANDBOXES },
      (_, i) => `sbx-${(0xb000 + i).toString(16).padStart(12, '0')}`,
    );
    await inParallel(ids.length, async (i) => {
      const id = ids[i] as string;
      await docker.createContainer({
        name: id,
        Image: loadConfig().SANDBOX_IMAGE,
        Labels: { 'matrx.sandbox_id': id, 'matrx.user_id': user, 'matrx.host_id': hostId },
        HostConfig: { NetworkMode: 'none' },
      });
    });
    await pool.query(
      `INSERT INTO sandboxes (sandbox_id, user_id, status, hot_path, cold_path, host_id)
       SELECT id, $2, 'creating', '/home/agent', '/data/cold', $3 FROM unnest($1::text[]) AS id`,
      [ids, user, hostId],
    );
    const store = new PostgresSandboxStore(pool, logger, 1000);
    const dockerRuntime = new DockerRuntime(docker, logger, {
      slowCallMs: 1000,
      firstCommandUser: 'agent',
      processOutputBytes: 1024 * 1024,
      diskLimitBytes: 20 * 1024 ** 3,
      diskProbeImage: 'matrx-sandbox:latest',
    });
    const counted = counting(dockerRuntime);
    const settings = loadConfig({
      MATRX_HOST_ID: hostId,
      MATRX_RECONCILE_GRACE_SECONDS: '0',
      MATRX_RECONCILE_STUCK_SECONDS: '3600',
    });
    const { reconciler } = composeServices(
      { store, runtime: counted.runtime, files: dockerRuntime.files, objects: null },
      settings,
      logger,
    );
    for (let i = 0; i < PASS_ROUNDS; i += 1) {
      const before = counted.calls();
      let outcome = '';
      timings.pass.push(
        await timed(async () => {
          const summary = await reconciler.runPass();
          outcome = `${summary.outcome} rows=${summary.rows} containers=${summary.containers} actions=${JSON.stringify(summary.actions)}`;
        }),
      );
      timings.dockerCallsPerPass = counted.calls() - before;
      if (i === 0) progress('registry', `reconcile pass: ${outcome}`);
      timings.rawReads.push(
        await timed(() =>
          Promise.all([
            docker.listContainers({ all: true, filters: { label: ['matrx.sandbox_id'] } }),
            pool.query('SELECT * FROM sandboxes WHERE host_id = $1', [hostId]),
          ]),
        ),
      );
    }
  } finally {
    await server.stop();
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`matrx.host_id=${hostId}`] },
    });
    await inParallel(left.length, async (i) => {
      await docker.getContainer(left[i]?.Id ?? '').remove({ force: true });
    });
    await pool.end();
    await database.drop();
    await postgres.server?.destroy();
  }
  return timings;
}
