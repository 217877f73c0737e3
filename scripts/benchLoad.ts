import type Docker from 'dockerode';
import { progress, stats, type Call } from './benchClient.js';
import { rawExec } from './benchRaw.js';

export interface LoadSide {
  /** Each exec's time, ms. */
  samples: number[];
  errors: number;
  firstError: string | undefined;
  /** From the first start to the last answer, ms. */
  elapsedMs: number;
}

export interface LoadTimings {
  api: LoadSide;
  raw: LoadSide;
}

/**
 * `clients` loops, each sending its next exec as soon as the previous one answered, until
 * `seconds` have passed; client i works on sandbox i % n, so every sandbox gets its share.
 */
async function closedLoop(
  phase: string,
  clients: number,
  seconds: number,
  once: (client: number) => Promise<unknown>,
): Promise<LoadSide> {
  const side: LoadSide = { samples: [], errors: 0, firstError: undefined, elapsedMs: 0 };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const ticker = setInterval(() => {
    const { median, p95 } = stats(side.samples.slice(-2000));
    const rate = side.samples.length / ((performance.now() - started) / 1000);
    progress(
      phase,
      `${side.samples.length} execs, ${rate.toFixed(0)}/s, recent p50 ${median.toFixed(0)} ms p95 ${p95.toFixed(0)} ms, ${side.errors} errors`,
    );
  }, 10_000);
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, client) => {
        while (performance.now() < deadline) {
          const sent = performance.now();
          try {
            await once(client);
            side.samples.push(performance.now() - sent);
          } catch (error) {
            side.errors += 1;
            side.firstError ??= String(error);
          }
        }
      }),
    );
  } finally {
    clearInterval(ticker);
  }
  side.elapsedMs = performance.now() - started;
  return side;
}

/**
 * `echo hi` from `clients` concurrent callers across the given sandboxes for `seconds`, through
 * the API, then as many concurrent raw engine execs in the same containers for as long.
 */
export async function benchLoad(
  call: Call,
  docker: Docker,
  sandboxes: readonly { sandboxId: string; containerId: string }[],
  clients: number,
  seconds: number,
): Promise<LoadTimings> {
  const pick = (client: number) => {
    const sandbox = sandboxes[client % sandboxes.length];
    if (!sandbox) throw new Error('no sandbox to load');
    return sandbox;
  };
  progress('load', `API: ${clients} clients on ${sandboxes.length} sandboxes for ${seconds} s`);
  const api = await closedLoop('load api', clients, seconds, (client) =>
    call('POST', `/sandboxes/${pick(client).sandboxId}/exec`, { command: 'echo hi' }),
  );
  progress('load', `raw: ${clients} concurrent engine execs for ${seconds} s`);
  const raw = await closedLoop('load raw', clients, seconds, (client) =>
    rawExec(docker, docker.getContainer(pick(client).containerId)),
  );
  return { api, raw };
}
