import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { docker, sandboxContainers } from '../support/docker.js';
import { groupRssBytes } from '../support/processes.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';

/**
 * A sandbox that abuses its machine changes nothing for anyone else: during each abuse, /health
 * answers within 2 s, a command in another user's sandbox within 3 s, and the server's memory
 * (its whole process group) stays within a bound; the abusing sandbox recovers, or ends with a
 * clear last_error. The bounds are the issue's, for every abuse and its end; the figures are
 * printed at the end.
 */
const BOUNDS = { healthMs: 2000, otherExecMs: 3000 };
/**
 * Over the server's RSS once the sandboxes are up (its process group: the API and the embedded S3
 * server), a bound, not a budget: a save of 10,000 files took it 273 MiB up once, the rest stays
 * near 60 MiB.
 */
const RSS_GROWTH_BOUND_BYTES = 384 * 1024 ** 2;
const SAMPLE_EVERY_MS = 200;
/** A call that has not answered by now counts as this slow, and the sampler goes on. */
const GIVE_UP_MS = 15_000;

const abuser = testUser('abuser');
const bystander = testUser('bystander');
let server: RunningServer;
const { call, create } = ownServer(() => server?.baseUrl);
let abusing: WireSandbox;
let other: WireSandbox;
let baselineRss = 0;

interface Figures {
  abuse: string;
  samples: number;
  healthMaxMs: number;
  otherExecMaxMs: number;
  rssPeakMiB: number;
}
const figures: Figures[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'matrx-abuse-'));
  server = await startServer({
    logFile: join(dir, 'server.log'),
    env: {
      MATRX_DOCKER_NETWORK: 'none',
      // One core of the two: a sandbox's CPU limit leaves the host some for the service.
      MATRX_CONTAINER_CPU_LIMIT: '1',
      MATRX_CONTAINER_MEMORY_LIMIT: '256m',
      MATRX_SHUTDOWN_TIMEOUT_SECONDS: '2',
      MATRX_EMBEDDED_S3_DIR: join(dir, 's3'),
    },
  });
  [abusing, other] = await Promise.all([create(abuser), create(bystander)]);
  await Promise.all([run(abusing, 'true'), run(other, 'true')]);
  baselineRss = groupRssBytes(server.process.pid ?? 0);
  process.stderr.write(`abuse: server RSS at start ${mib(baselineRss)} MiB\n`);
});

afterAll(async () => {
  process.stderr.write(
    `abuse figures (bounds: health ${BOUNDS.healthMs} ms, other exec ${BOUNDS.otherExecMs} ms, ` +
      `RSS ${mib(baselineRss)} + ${mib(RSS_GROWTH_BOUND_BYTES)} MiB):\n` +
      figures.map((f) => `  ${JSON.stringify(f)}`).join('\n') +
      '\n',
  );
  await server?.stop();
  for (const container of [
    ...(await sandboxContainers(abuser)),
    ...(await sandboxContainers(bystander)),
  ]) {
    await docker.getContainer(container.Id).remove({ force: true });
  }
});

const mib = (bytes: number) => Math.round(bytes / 1024 ** 2);

function run(sandbox: WireSandbox, command: string, timeout = 60) {
  return call<ExecReply>('POST', `/sandboxes/${sandbox.sandbox_id}/exec`, { command, timeout });
}

/** How long one plain request takes, capped at GIVE_UP_MS. */
async function timed(path: string, init: RequestInit = {}): Promise<number> {
  const started = performance.now();
  try {
    const response = await fetch(`${server.baseUrl}${path}`, {
      ...init,
      signal: AbortSignal.timeout(GIVE_UP_MS),
    });
    await response.arrayBuffer();
    if (!response.ok) return GIVE_UP_MS;
  } catch {
    return GIVE_UP_MS;
  }
  return performance.now() - started;
}

/**
 * Runs `abuse` while sampling, in parallel, /health, a command in the other sandbox and the
 * server's RSS; checks every sample against its bound once the abuse is over.
 */
async function during<T>(name: string, abuse: () => Promise<T>): Promise<T> {
  let over = false;
  const health: number[] = [];
  const otherExec: number[] = [];
  let rssPeak = 0;
  const sample = async (into: number[], measure: () => Promise<number>) => {
    while (!over) {
      into.push(await measure());
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
    }
  };
  const execInit: RequestInit = {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ command: 'echo ok', timeout: 10 }),
  };
  const samplers = Promise.all([
    sample(health, () => timed('/health')),
    sample(otherExec, () => timed(`/sandboxes/${other.sandbox_id}/exec`, execInit)),
    (async () => {
      while (!over) {
        rssPeak = Math.max(rssPeak, groupRssBytes(server.process.pid ?? 0));
        await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
      }
    })(),
  ]);
  try {
    return await abuse();
  } finally {
    over = true;
    await samplers;
    const max = (values: number[]) => Math.round(Math.max(0, ...values));
    figures.push({
      abuse: name,
      samples: health.length,
      healthMaxMs: max(health),
      otherExecMaxMs: max(otherExec),
      rssPeakMiB: mib(rssPeak),
    });
    expect(max(health)).toBeLessThanOrEqual(BOUNDS.healthMs);
    expect(max(otherExec)).toBeLessThanOrEqual(BOUNDS.otherExecMs);
    expect(rssPeak - baselineRss).toBeLessThanOrEqual(RSS_GROWTH_BOUND_BYTES);
  }
}

/** The abusing sandbox answers a command again. */
async function recovers(): Promise<void> {
  const alive = await run(abusing, 'echo alive');
  expect(alive.status).toBe(200);
  expect(alive.body.stdout).toBe('alive\n');
}

describe('abuse in one sandbox changes nothing for anyone else', () => {
  it('a fork bomb stays inside its pids limit, and its sandbox can be ended', async () => {
    // The bomb leaves the command at once (its processes are orphans) and goes on until the
    // sandbox ends: the abusing sandbox is deleted (a kill of some 4,000 processes) and made again.
    try {
      const bombed = await during('fork bomb', async () => {
        const started = await run(abusing, 'bomb() { bomb | bomb & }; bomb', 10);
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        return started;
      });
      expect(bombed.status).toBe(200);
    } finally {
      const ended = await during('fork bomb: its delete', () =>
        call('DELETE', `/sandboxes/${abusing.sandbox_id}?graceful=false`),
      );
      expect(ended.status).toBe(204);
      abusing = await create(abuser);
    }
  }, 240_000);

  it('a memory bomb is killed by its memory limit', async () => {
    const bombed = await during('memory bomb', () =>
      run(abusing, "python3 -c 'b = bytes([120]) * (2 * 1024**3)'", 60),
    );
    expect(bombed.body.exit_code).toBe(137);
    await recovers();
  });

  it('50 MB of output is cut at the cap', async () => {
    const flood = await during('50 MB of output', () =>
      run(abusing, 'head -c 37500000 /dev/urandom | base64 -w 0', 120),
    );
    expect(flood.body).toMatchObject({ exit_code: 0, stdout_truncated: true });
    expect(flood.body.stdout.length).toBeLessThanOrEqual(1024 * 1024);
    await recovers();
  });

  it('a command that ignores SIGTERM is killed at its timeout', async () => {
    const stubborn = await during('ignores SIGTERM', () =>
      run(abusing, "trap '' TERM; sleep 600", 3),
    );
    expect(stubborn.body).toMatchObject({ timed_out: true, exit_code: 124 });
    const left = await run(abusing, "pgrep -f 'sleep 60[0]' || echo none");
    expect(left.body.stdout).toBe('none\n');
  });

  it('a command that closes its stdout and keeps running ends at its timeout', async () => {
    const closed = await during('closes stdout, runs on', () =>
      run(abusing, 'exec >&- 2>&-; sleep 600', 3),
    );
    expect(closed.body).toMatchObject({ timed_out: true, exit_code: 124 });
    await recovers();
  });

  it('10,000 files in the home are saved when the sandbox ends', async () => {
    const made = await during('10,000 files', () =>
      run(abusing, 'mkdir many && cd many && seq -w 1 10000 | xargs touch && ls | wc -l', 120),
    );
    expect(made.body.stdout).toBe('10000\n');
    // The end saves them (a SIGTERM-deaf background process too: the graceful stop kills it).
    const deaf = await call('POST', `/sandboxes/${abusing.sandbox_id}/processes`, {
      command: "trap '' TERM; while :; do sleep 1; done",
    });
    expect(deaf.status).toBe(201);
    const deleted = await during('delete: 10,000 files saved, SIGTERM ignored', () =>
      call('DELETE', `/sandboxes/${abusing.sandbox_id}`),
    );
    expect(deleted.status).toBe(204);
    const saved = await call<{ hot: { total_objects: number } }>('GET', `/users/${abuser}/storage`);
    expect(saved.body.hot.total_objects).toBeGreaterThanOrEqual(10_000);
    // Each file is an object of its own: with the embedded S3 server the save takes 4 to 5 min.
  }, 480_000);
});
