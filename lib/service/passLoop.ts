import type { Logger } from '../logger.js';

/** A task run in passes: the reconciler, the disk watch. */
export interface Passes {
  runPass(): Promise<unknown>;
  /** No new step starts after this; the ones running finish. */
  stop(): void;
}

/** One pass now, then one every interval after the last ended; stop() waits for the one in flight. */
export class PassLoop {
  #timer: NodeJS.Timeout | undefined;
  #current: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(
    /** Names the task in the log: `reconcile pass failed`. */
    private readonly name: string,
    private readonly passes: Passes,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    /** Whether a pending timer keeps the process alive (the reconciler's own process). */
    private readonly keepsProcessAlive: boolean,
  ) {}

  start(): void {
    this.#tick();
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#current = this.passes
      .runPass()
      .catch((error: unknown) => this.logger.error(`${this.name} pass failed`, { error }))
      .finally(() => {
        if (this.#stopped) return;
        this.#timer = setTimeout(() => this.#tick(), this.intervalMs);
        if (!this.keepsProcessAlive) this.#timer.unref();
      });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.passes.stop();
    await this.#current;
  }
}
