import { createHash } from 'node:crypto';
import {
  ACTIVE_STATUSES,
  EXEC_STATUSES,
  TERMINAL_STATUSES,
  COLD_PATH,
  CREATED_AT_LABEL,
  DEFAULT_EXEC_USER,
  HOST_ID_LABEL,
  HOT_PATH,
  newSandbox,
  SANDBOX_ID_LABEL,
  USER_ID_LABEL,
  type Sandbox,
  type SandboxStatus,
} from '../domain/sandbox.js';
import { ConflictError, NotFoundError, sandboxNotFound, UnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  ContainerRuntime,
  ExecResult,
  ObservedContainer,
  SandboxStore,
  StatusChange,
} from '../ports.js';
import type { HomeSync, Tier } from './homeSync.js';

export interface SandboxServiceSettings {
  hostId: string;
  storeKind: 'memory' | 'postgres';
  image: string;
  network: string;
  cpuLimit: number;
  memoryLimitBytes: number;
  s3Bucket: string;
  s3Region: string;
  shutdownTimeoutSeconds: number;
  readyTimeoutSeconds: number;
  defaultCommandTimeoutSeconds: number;
  maxOutputBytes: number;
}

export interface ExecCommand {
  command: string;
  timeout?: number;
  user: string;
}

interface DependencyHealth {
  reachable: boolean;
  latency_ms: number;
  error?: string;
}

export interface Health {
  status: 'healthy' | 'degraded';
  active_sandboxes: number;
  uptime_seconds: number;
  host_id: string;
  docker: DependencyHealth;
  registry: DependencyHealth & { store: 'memory' | 'postgres' };
  /** Users' homes in S3; not configured means nothing is kept, which is not a failure. */
  storage: DependencyHealth & { configured: boolean };
}

export interface EndOptions {
  graceful: boolean;
  reason: string;
  /** `stopped` unless the session ran out of time. */
  finalStatus?: Extract<SandboxStatus, 'stopped' | 'expired'>;
  /** Kept on the row when the end was not asked for (the reconciler's findings). */
  lastError?: string;
}

/** A dependency check that hangs (an SDK retrying) is reported as such, not waited for. */
const PROBE_TIMEOUT_MS = 3000;

/** Times a dependency check; a failure is reported, not thrown. */
async function probe<T>(check: () => Promise<T>): Promise<[DependencyHealth, T | undefined]> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
      PROBE_TIMEOUT_MS,
    );
  });
  try {
    const value = await Promise.race([check(), timeout]);
    return [{ reachable: true, latency_ms: elapsed() }, value];
  } catch (error) {
    return [
      { reachable: false, latency_ms: elapsed(), error: (error as Error).message },
      undefined,
    ];
  } finally {
    clearTimeout(timer);
  }
}

/** Graceful stops get the sandbox's own shutdown window plus this margin before Docker kills. */
const STOP_MARGIN_SECONDS = 10;

export class SandboxService {
  readonly #startedAt = Date.now();
  /** One shutdown at a time per sandbox; a second request joins the first. */
  readonly #ending = new Map<string, Promise<void>>();

  constructor(
    private readonly store: SandboxStore,
    private readonly runtime: ContainerRuntime,
    private readonly settings: SandboxServiceSettings,
    private readonly logger: Logger,
    /** Users' homes in S3; null when no bucket is configured (nothing is kept). */
    private readonly homes: HomeSync | null,
  ) {}

  async health(): Promise<Health> {
    const { hostId, storeKind } = this.settings;
    const { homes } = this;
    const [[docker], [registry, active], [storage]] = await Promise.all([
      probe(() => this.runtime.ping()),
      probe(() => this.store.count({ hostId, statuses: ACTIVE_STATUSES })),
      homes ? probe(() => homes.checkStorage()) : probe(async () => undefined),
    ]);
    const healthy = docker.reachable && registry.reachable && storage.reachable;
    return {
      status: healthy ? 'healthy' : 'degraded',
      active_sandboxes: active ?? 0,
      uptime_seconds: Math.floor((Date.now() - this.#startedAt) / 1000),
      host_id: hostId,
      docker,
      registry: { store: storeKind, ...registry },
      storage: { configured: homes !== null, ...storage },
    };
  }

  async create(userId: string, config: Record<string, unknown>): Promise<Sandbox> {
    const sandbox = newSandbox(userId, config, this.settings.hostId);
    const log = this.#log(sandbox);
    await this.store.save(sandbox);
    log.info('sandbox create requested');
    let containerId: string | null = null;
    try {
      containerId = await this.runtime.create(this.#containerSpec(sandbox));
      if (this.homes) {
        log.info('home restored', { files: await this.homes.restore(userId, containerId) });
      }
      await this.#move(sandbox.sandboxId, { status: 'starting', containerId }, 'container created');
      const started = performance.now();
      const outcome = await this.runtime.startAndWaitReady(
        containerId,
        this.settings.readyTimeoutSeconds * 1000,
        () => log.info('container started', { container_id: containerId }),
      );
      if (outcome.ready) {
        log.info('sandbox ready', { ready_ms: Math.round(performance.now() - started) });
        this.runtime.prepareExec(containerId, DEFAULT_EXEC_USER, this.settings.maxOutputBytes);
        return await this.#move(sandbox.sandboxId, { status: 'ready' }, 'ready marker seen');
      }
      log.warn('sandbox failed to become ready', { reason: outcome.reason });
      await this.runtime.remove(containerId);
      return await this.#move(
        sandbox.sandboxId,
        { status: 'failed', lastError: outcome.reason },
        outcome.reason,
      );
    } catch (error) {
      log.error('sandbox create failed', { error });
      if (containerId) await this.runtime.remove(containerId).catch(() => undefined);
      const reason = (error as Error).message;
      await this.#move(sandbox.sandboxId, { status: 'failed', lastError: reason }, reason).catch(
        () => undefined,
      );
      throw error;
    }
  }

  list(userId?: string): Promise<Sandbox[]> {
    return this.store.list({ userId });
  }

  async get(sandboxId: string): Promise<Sandbox> {
    const sandbox = await this.store.get(sandboxId);
    if (!sandbox) throw sandboxNotFound(sandboxId);
    return sandbox;
  }

  /** A sandbox this host runs: another host's is read here, never acted on. */
  async #getLocal(sandboxId: string): Promise<Sandbox> {
    const sandbox = await this.get(sandboxId);
    if (sandbox.hostId !== this.settings.hostId) {
      throw new ConflictError(
        `Sandbox ${sandboxId} runs on host ${sandbox.hostId}; send this request to that host`,
      );
    }
    return sandbox;
  }

  async exec(sandboxId: string, request: ExecCommand): Promise<ExecResult> {
    const sandbox = await this.#getLocal(sandboxId);
    if (!EXEC_STATUSES.includes(sandbox.status) || !sandbox.containerId) {
      throw new ConflictError(`Sandbox ${sandboxId} is not running (status: ${sandbox.status})`);
    }
    if (sandbox.status === 'ready') {
      await this.#move(sandboxId, { status: 'running' }, 'first command');
    }
    const started = performance.now();
    let result: ExecResult;
    try {
      result = await this.runtime.exec(sandbox.containerId, {
        command: request.command,
        user: request.user,
        timeoutSeconds: request.timeout ?? this.settings.defaultCommandTimeoutSeconds,
        maxOutputBytes: this.settings.maxOutputBytes,
      });
    } catch (error) {
      if (error instanceof ConflictError || error instanceof NotFoundError) {
        throw new ConflictError(`Sandbox ${sandboxId} is not running (its container is not)`, {
          cause: error,
        });
      }
      throw error;
    }
    const log = this.#log(sandbox);
    // Commands carry secrets: their text only at DEBUG, a length and a short hash above it.
    log.debug('exec command', { command: request.command });
    log.info('exec finished', {
      exit_code: result.exitCode,
      timed_out: result.timedOut,
      duration_ms: Math.round(performance.now() - started),
      command_length: request.command.length,
      command_sha256: createHash('sha256').update(request.command).digest('hex').slice(0, 12),
      user: request.user,
    });
    return result;
  }

  /** One write when the sandbox runs here; only a refused heartbeat reads it to say why. */
  async heartbeat(sandboxId: string): Promise<Sandbox> {
    const sandbox = await this.store.touchHeartbeat(sandboxId, this.settings.hostId, new Date());
    if (!sandbox) {
      await this.#getLocal(sandboxId);
      throw sandboxNotFound(sandboxId);
    }
    this.#log(sandbox).debug('heartbeat');
    return sandbox;
  }

  /** Ends the sandbox now: the answer comes once the container is gone. */
  async destroy(sandboxId: string, graceful: boolean): Promise<void> {
    const sandbox = await this.#getLocal(sandboxId);
    await this.end(sandbox, { graceful, reason: 'deleted by request' });
  }

  /** The agent says it is done: shutdown starts, the answer does not wait for it. */
  async complete(sandboxId: string, result: unknown): Promise<Sandbox> {
    const sandbox = await this.#getLocal(sandboxId);
    this.#log(sandbox).info('sandbox completed by agent', { has_result: result !== undefined });
    return this.#endInBackground(sandbox, 'completed by agent');
  }

  async reportError(
    sandboxId: string,
    message: string,
    details: Record<string, unknown>,
  ): Promise<Sandbox> {
    const sandbox = await this.#getLocal(sandboxId);
    // The message is what an operator needs; the details are request body, so only their keys.
    this.#log(sandbox).warn('error reported by agent', {
      agent_error: message.slice(0, 1000),
      details_keys: Object.keys(details ?? {}),
    });
    return this.#endInBackground(sandbox, `agent reported an error: ${message}`);
  }

  /** Waits for shutdowns in flight, for a clean process exit. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#ending.values()]);
  }

  /** Takes a running sandbox container with no registry row back into the registry. */
  async adopt(container: ObservedContainer): Promise<Sandbox> {
    const base = newSandbox(
      container.userId,
      {},
      this.settings.hostId,
      container.createdAt ?? undefined,
    );
    const sandbox: Sandbox = {
      ...base,
      sandboxId: container.sandboxId,
      containerId: container.containerId,
      status: 'running',
    };
    await this.store.save(sandbox);
    this.#log(sandbox).warn('sandbox adopted from its container', {
      container_id: container.containerId,
      container_running: container.running,
    });
    return sandbox;
  }

  async #endInBackground(sandbox: Sandbox, reason: string): Promise<Sandbox> {
    if (TERMINAL_STATUSES.includes(sandbox.status)) return sandbox;
    const shuttingDown = await this.#move(sandbox.sandboxId, { status: 'shutting_down' }, reason);
    this.end(sandbox, { graceful: true, reason }).catch((error: unknown) =>
      this.#log(sandbox).error('background shutdown failed', { error }),
    );
    return shuttingDown;
  }

  /**
   * Ends a sandbox the one way: stop, save its home, remove its container, then `stopped` (or
   * `expired`). Each step is idempotent, so an end that was interrupted can simply run again.
   */
  end(sandbox: Sandbox, options: EndOptions): Promise<void> {
    const inFlight = this.#ending.get(sandbox.sandboxId);
    if (inFlight) return inFlight;
    const ending = this.#stopAndRemove(sandbox.sandboxId, options).finally(() =>
      this.#ending.delete(sandbox.sandboxId),
    );
    this.#ending.set(sandbox.sandboxId, ending);
    return ending;
  }

  async #stopAndRemove(sandboxId: string, options: EndOptions): Promise<void> {
    // Read afresh: another request, or another process, may have ended it meanwhile.
    const sandbox = await this.store.get(sandboxId);
    if (!sandbox || TERMINAL_STATUSES.includes(sandbox.status)) return;
    const { graceful, reason, lastError } = options;
    const log = this.#log(sandbox);
    await this.#move(sandboxId, { status: 'shutting_down', lastError }, reason);
    log.info('sandbox shutting down', { reason, graceful });
    // A create interrupted before the id was recorded left a container named after the sandbox.
    const container = sandbox.containerId ?? sandbox.sandboxId;
    try {
      const timeout = graceful ? this.settings.shutdownTimeoutSeconds + STOP_MARGIN_SECONDS : 0;
      await this.runtime.stop(container, timeout);
      await this.#saveHome(sandbox, container);
      await this.runtime.remove(container);
    } catch (error) {
      const failure = (error as Error).message;
      await this.#move(sandboxId, { status: 'shutting_down', lastError: failure }, failure);
      throw error;
    }
    await this.#move(sandboxId, { status: options.finalStatus ?? 'stopped' }, reason);
    log.info('sandbox destroyed', { reason });
  }

  /** Saves the stopped container's home; the container stays until this succeeds. */
  async #saveHome(sandbox: Sandbox, container: string): Promise<void> {
    if (!this.homes) return;
    try {
      await this.homes.save(sandbox.userId, container);
    } catch (error) {
      // The container was removed behind our back: its files went with it, nothing is left to save.
      if (!(error instanceof NotFoundError)) throw error;
      this.#log(sandbox).error('container gone before its home could be saved', { error });
    }
  }

  async storageUsage(userId: string) {
    return this.#requireHomes().usage(userId);
  }

  async emptyStorage(userId: string, tier: Tier): Promise<number> {
    const deleted = await this.#requireHomes().empty(userId, tier);
    this.logger.warn('user storage emptied', { user_id: userId, tier, deleted_objects: deleted });
    return deleted;
  }

  #requireHomes(): HomeSync {
    if (!this.homes) throw new UnavailableError('S3', 'No S3 bucket is configured');
    return this.homes;
  }

  /** Every status change goes through here, and is logged with its reason. */
  async #move(sandboxId: string, change: StatusChange, reason: string): Promise<Sandbox> {
    const update = await this.store.updateStatus(sandboxId, change);
    if (!update) throw sandboxNotFound(sandboxId);
    const { sandbox, previous } = update;
    if (previous !== sandbox.status) {
      this.#log(sandbox).info('sandbox status changed', {
        from: previous,
        to: sandbox.status,
        reason,
      });
    }
    return sandbox;
  }

  #containerSpec(sandbox: Sandbox) {
    const { settings } = this;
    return {
      name: sandbox.sandboxId,
      image: settings.image,
      labels: {
        [SANDBOX_ID_LABEL]: sandbox.sandboxId,
        [USER_ID_LABEL]: sandbox.userId,
        [CREATED_AT_LABEL]: sandbox.createdAt.toISOString(),
        [HOST_ID_LABEL]: sandbox.hostId,
      },
      env: {
        SANDBOX_ID: sandbox.sandboxId,
        USER_ID: sandbox.userId,
        S3_BUCKET: settings.s3Bucket,
        S3_REGION: settings.s3Region,
        HOT_PATH,
        COLD_PATH,
        SHUTDOWN_TIMEOUT_SECONDS: String(settings.shutdownTimeoutSeconds),
      },
      cpuLimit: settings.cpuLimit,
      memoryLimitBytes: settings.memoryLimitBytes,
      network: settings.network,
    };
  }

  /** Log calls that carry the sandbox's ids; cheaper than a child logger per call. */
  #log(sandbox: Sandbox) {
    const ids = { sandbox_id: sandbox.sandboxId, user_id: sandbox.userId };
    const { logger } = this;
    type Extra = Record<string, unknown>;
    return {
      debug: (message: string, extra: Extra = {}) => logger.debug(message, { ...ids, ...extra }),
      info: (message: string, extra: Extra = {}) => logger.info(message, { ...ids, ...extra }),
      warn: (message: string, extra: Extra = {}) => logger.warn(message, { ...ids, ...extra }),
      error: (message: string, extra: Extra = {}) => logger.error(message, { ...ids, ...extra }),
    };
  }
}
