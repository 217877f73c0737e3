import type { Logger } from '../logger.js';
import type { Reconciler } from './reconciler.js';

/** One pass now, then one every interval; stop() waits for the pass in flight. */
export class ReconcileLoop {
  #timer: NodeJS.Timeout | undefined;
  #current: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(
    private readonly reconciler: Reconciler,
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
    this.#current = this.reconciler
      .runPass()
      .catch((error: unknown) => this.logger.error('reconcile pass failed', { error }))
      .finally(() => {
        if (this.#stopped) return;
        this.#timer = setTimeout(() => this.#tick(), this.intervalMs);
        if (!this.keepsProcessAlive) this.#timer.unref();
      });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.reconciler.stop();
    await this.#current;
  }
}
