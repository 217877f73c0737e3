import type { Duplex } from 'node:stream';
import type { ReadyOutcome } from '../../ports.js';

/** The line the sandbox image prints once it has touched the ready marker. */
export const READY_LINE = 'matrx-sandbox: ready';

export function readyLineSeen(output: Duplex): Promise<ReadyOutcome> {
  return new Promise((resolve) => {
    let tail = '';
    output.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString('latin1')).slice(-4096);
      if (tail.includes(READY_LINE)) resolve({ ready: true });
    });
  });
}

export function timedOut(timeoutMs: number, signal: AbortSignal): Promise<ReadyOutcome> {
  return delay(timeoutMs, signal).then(() => ({
    ready: false,
    reason: `not ready within ${Math.round(timeoutMs / 1000)} s`,
  }));
}

export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
