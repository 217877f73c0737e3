import { randomBytes } from 'node:crypto';

/** Background processes of a sandbox: their ids, and what a caller may ask of them. */
export const PROCESS_ID_PATTERN = /^proc-[0-9a-f]{12}$/;

export function newProcessId(): string {
  return `proc-${randomBytes(6).toString('hex')}`;
}

/** A process may be given a day at most; without a timeout it runs until killed. */
export const MAX_PROCESS_TIMEOUT_SECONDS = 86_400;

/** The longest an output read waits for new output: below any HTTP client's patience. */
export const MAX_OUTPUT_WAIT_SECONDS = 20;
