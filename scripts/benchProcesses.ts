import { progress, sleep, type Call } from './benchClient.js';

export interface LongPollTimings {
  /** From the stdin write's answer to the long-poll's answer bringing the line, ms. */
  afterStdin: number[];
  /** From the stdin write being sent to the same answer, ms. */
  afterSent: number[];
}

const WARM_ROUNDS = 3;

/**
 * How soon a held long-poll of a background process's output answers once the process writes:
 * `cat` echoes each line written to its stdin. Each round holds a GET .../output?wait=10 from the
 * current offset for `holdMs` (so it is waiting in the service, not still arriving), writes one
 * line through POST .../stdin, and times the long-poll's answer.
 */
export async function benchLongPoll(
  call: Call,
  sandboxId: string,
  rounds: number,
  holdMs: number,
): Promise<LongPollTimings> {
  const timings: LongPollTimings = { afterStdin: [], afterSent: [] };
  const started = await call('POST', `/sandboxes/${sandboxId}/processes`, { command: 'cat' });
  const path = `/sandboxes/${sandboxId}/processes/${String(started.process_id)}`;
  let offset = 0;
  try {
    for (let round = 0; round < WARM_ROUNDS + rounds; round += 1) {
      const line = `line ${round}\n`;
      let answeredAt = 0;
      const poll = call('GET', `${path}/output?stdout_offset=${offset}&wait=10`).then((output) => {
        answeredAt = performance.now();
        return output;
      });
      await sleep(holdMs);
      const sentAt = performance.now();
      await call('POST', `${path}/stdin`, { data: line });
      const returnedAt = performance.now();
      const output = await poll;
      if (output.stdout !== line) {
        throw new Error(`round ${round}: the long-poll answered ${JSON.stringify(output)}`);
      }
      offset = Number(output.stdout_offset);
      if (round >= WARM_ROUNDS) {
        timings.afterStdin.push(answeredAt - returnedAt);
        timings.afterSent.push(answeredAt - sentAt);
      }
      const measured = round + 1 - WARM_ROUNDS;
      if (measured > 0 && measured % 10 === 0)
        progress('long-poll', `${measured}/${rounds} rounds`);
    }
  } finally {
    await call('DELETE', `${path}?signal=KILL`).catch(() => undefined);
  }
  return timings;
}
