import { request as httpRequest, type Agent } from 'node:http';

/** One request to the API: the parsed JSON answer, or an error naming the status. */
export type Call = (
  method: string,
  path: string,
  json?: unknown,
) => Promise<Record<string, unknown>>;

/** node:http with the given (kept-alive) agent: the lightest HTTP client Node has. */
export function apiCall(base: string, agent: Agent): Call {
  return (method, path, json) => {
    const body = json === undefined ? undefined : JSON.stringify(json);
    return new Promise((resolve, reject) => {
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
  };
}

export async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

/** Runs `task` for indexes 0..count-1, `parallel` at a time. */
export async function inParallel(
  count: number,
  task: (index: number) => Promise<void>,
  parallel = 16,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

export function stats(samples: readonly number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { median: at(0.5), p95: at(0.95) };
}

/** A knob from the environment; blank is unset, as for the settings. */
export function knob(name: string, fallback: number): number {
  const given = process.env[name]?.trim();
  const value = given ? Number(given) : fallback;
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number`);
  return value;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A line on stderr saying where the run is: stdout keeps the results alone. */
export function progress(phase: string, message: string): void {
  const elapsed = (performance.now() / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[bench ${elapsed} s] ${phase}: ${message}\n`);
}
