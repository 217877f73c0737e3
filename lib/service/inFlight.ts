/**
 * The work this process is doing on each sandbox (a create, an end), one piece after another:
 * an end asked for while the sandbox is still being created waits for the create, and the
 * reconciler leaves a sandbox with work in flight alone.
 */
export class InFlight {
  readonly #bySandbox = new Map<string, Promise<unknown>>();

  has(sandboxId: string): boolean {
    return this.#bySandbox.has(sandboxId);
  }

  /** Runs `work` once whatever is in flight for the sandbox has settled. */
  run<T>(sandboxId: string, work: () => Promise<T>): Promise<T> {
    const before = this.#bySandbox.get(sandboxId) ?? Promise.resolve();
    const result = before.catch(() => undefined).then(work);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.#bySandbox.set(sandboxId, settled);
    void settled.then(() => {
      if (this.#bySandbox.get(sandboxId) === settled) this.#bySandbox.delete(sandboxId);
    });
    return result;
  }

  /** Resolves once nothing is in flight, for a clean process exit. */
  async drain(): Promise<void> {
    while (this.#bySandbox.size > 0) await Promise.all(this.#bySandbox.values());
  }
}
