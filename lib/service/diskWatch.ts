import { EXEC_STATUSES, HOT_PATH, type Sandbox } from '../domain/sandbox.js';
import { describeSize } from '../domain/size.js';
import type { Logger } from '../logger.js';
import type { ContainerRuntime, DiskLimitMode, SandboxStore } from '../ports.js';
import type { SandboxEnding } from './ending.js';
import { sandboxLog } from './sandboxLog.js';

export interface DiskWatchSettings {
  hostId: string;
  /** MATRX_CONTAINER_DISK_LIMIT, in bytes. */
  limitBytes: number;
}

export interface DiskPass {
  mode: DiskLimitMode;
  /** Sandboxes measured in this pass. */
  measured: number;
  /** Sandboxes ended for being over the limit. */
  ended: number;
  /** Sandboxes that could not be measured or ended; the next pass tries again. */
  failed: number;
}

/** `du` of the home: slow on a home of many files, and a stuck one must not hold the pass. */
const HOME_MEASURE_TIMEOUT_SECONDS = 60;

/**
 * The disk limit where the engine cannot size a container (`measured` mode): each pass measures
 * what every ready or running sandbox of this host wrote (its writable layer, the home included)
 * and ends one over MATRX_CONTAINER_DISK_LIMIT: killed, its home saved when the home alone fits
 * within the limit, status `failed` with a `last_error` naming the limit. In `quota` mode the
 * engine holds the limit (a write past it fails with ENOSPC inside the sandbox), and a pass
 * measures nothing.
 */
export class DiskWatch {
  #stopping = false;

  constructor(
    private readonly store: SandboxStore,
    private readonly runtime: ContainerRuntime,
    private readonly ending: SandboxEnding,
    private readonly settings: DiskWatchSettings,
    private readonly logger: Logger,
  ) {}

  /** No sandbox is measured after this; the one being ended finishes. */
  stop(): void {
    this.#stopping = true;
  }

  async runPass(): Promise<DiskPass> {
    const mode = await this.runtime.diskLimitMode();
    const pass: DiskPass = { mode, measured: 0, ended: 0, failed: 0 };
    if (mode === 'quota') return pass;
    const { hostId } = this.settings;
    const sandboxes = await this.store.list({ hostId, statuses: EXEC_STATUSES });
    // One at a time: measuring walks a sandbox's files, and the engine serves the sandboxes too.
    for (const sandbox of sandboxes) {
      if (this.#stopping) break;
      if (!sandbox.containerId) continue;
      try {
        const used = await this.runtime.diskUsage(sandbox.containerId);
        pass.measured += 1;
        if (used !== null && used > this.settings.limitBytes) {
          await this.#endOverLimit(sandbox, sandbox.containerId, used);
          pass.ended += 1;
        }
      } catch (error) {
        pass.failed += 1;
        sandboxLog(this.logger, sandbox).error('disk check of a sandbox failed', { error });
      }
    }
    if (pass.ended > 0 || pass.failed > 0)
      this.logger.warn('disk check pass finished', { ...pass });
    return pass;
  }

  async #endOverLimit(sandbox: Sandbox, containerId: string, usedBytes: number): Promise<void> {
    const limit = this.settings.limitBytes;
    const home = await this.#homeBytes(containerId);
    const homeFits = home !== null && home <= limit;
    const homeFate =
      home === null
        ? 'its home could not be measured and was not saved'
        : homeFits
          ? `its home (${describeSize(home)}) was saved`
          : `its home alone (${describeSize(home)}) is over the limit and was not saved`;
    const lastError =
      `Disk limit exceeded: the sandbox wrote ${describeSize(usedBytes)}, over ` +
      `MATRX_CONTAINER_DISK_LIMIT (${describeSize(limit)}); ${homeFate}`;
    sandboxLog(this.logger, sandbox).warn('sandbox over its disk limit: ending it', {
      used_bytes: usedBytes,
      limit_bytes: limit,
      home_bytes: home,
    });
    await this.ending.end(sandbox.sandboxId, {
      graceful: false,
      reason: 'disk limit exceeded',
      finalStatus: 'failed',
      lastError,
      saveHome: homeFits,
    });
  }

  /** The home's bytes (what `SizeRw` counts: file sizes), measured before the sandbox stops. */
  async #homeBytes(containerId: string): Promise<number | null> {
    try {
      const result = await this.runtime.exec(containerId, {
        command: `du -s -x -b ${HOT_PATH}`,
        // Root reads what the agent made unreadable to itself.
        user: 'root',
        timeoutSeconds: HOME_MEASURE_TIMEOUT_SECONDS,
        maxOutputBytes: 4096,
      });
      const bytes = /^(\d+)\s/.exec(result.stdout)?.[1];
      return result.timedOut || bytes === undefined ? null : Number(bytes);
    } catch {
      return null;
    }
  }
}
