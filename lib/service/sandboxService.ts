import {
  ACTIVE_STATUSES,
  CREATED_AT_LABEL,
  expiryOf,
  HOST_ID_LABEL,
  IDLE_LABEL,
  newSandbox,
  SANDBOX_ID_LABEL,
  TEMPLATE_LABEL,
  TERMINAL_STATUSES,
  TTL_LABEL,
  USER_ID_LABEL,
  type ColdTierState,
  type Sandbox,
} from '../domain/sandbox.js';
import {
  resolveConfig,
  type ConfigDefaults,
  type KnownConfig,
  type ResolvedConfig,
} from '../domain/sandboxConfig.js';
import { ConflictError, sandboxNotFound } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  ContainerRuntime,
  ContainerSpec,
  ExecResult,
  SandboxStore,
  StatusChange,
} from '../ports.js';
import type { ColdTier } from './coldTier.js';
import { hostEnv, identityEnv } from './containerEnv.js';
import type { SandboxEnding } from './ending.js';
import type { HomeListing, HomeSync } from './homeSync.js';
import { commandFingerprint } from './commandLog.js';
import type { InFlight } from './inFlight.js';
import { inContainer, type SandboxAccess } from './sandboxAccess.js';
import { sandboxLog } from './sandboxLog.js';
import { moveStatus } from './statusMoves.js';
import type { PoolMember, WarmPool } from './warmPool.js';

export interface SandboxServiceSettings {
  hostId: string;
  /** What a create's config falls back to. */
  config: ConfigDefaults;
  s3Bucket: string;
  s3Region: string;
  shutdownTimeoutSeconds: number;
  readyTimeoutSeconds: number;
  defaultCommandTimeoutSeconds: number;
  maxOutputBytes: number;
  /** Tests only (MATRX_TEST_CLAIM_PAUSE_MS): a claim waits this long after its rename. */
  claimPauseMs: number;
}

export interface ExecCommand {
  command: string;
  timeout?: number;
  user: string;
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
}

export interface ExecOutcome extends ExecResult {
  /** The runtime's call, as the service timed it. */
  durationMs: number;
}

/** What a caller asks of a sandbox: create it, read it, run commands in it, end it. */
export class SandboxService {
  constructor(
    private readonly store: SandboxStore,
    private readonly access: SandboxAccess,
    private readonly runtime: ContainerRuntime,
    private readonly ending: SandboxEnding,
    private readonly inFlight: InFlight,
    /** Users' homes in S3; null when no bucket is configured (nothing is kept). */
    private readonly homes: HomeSync | null,
    private readonly settings: SandboxServiceSettings,
    private readonly logger: Logger,
    /** Ready containers waiting for a create; null when this process keeps no pool. */
    private readonly pool: WarmPool | null = null,
    private readonly cold: ColdTier | null = null,
  ) {}

  /** Answers once the sandbox is ready, or failed; Docker's own failures go up as they are. */
  async create(userId: string, config: KnownConfig & Record<string, unknown>): Promise<Sandbox> {
    const resolved = resolveConfig(config, this.settings.config);
    const sandbox = newSandbox(userId, config, this.settings.hostId, new Date(), resolved);
    const { pool } = this;
    const member = pool?.canServe(resolved) ? pool.take() : undefined;
    try {
      // A claim's S3 list of the home and its cold-tier mount run beside the row's write.
      const listing = member && this.homes?.list(userId);
      listing?.catch(() => undefined); // awaited by the restore
      const attached = member && this.cold?.attach(sandbox, member.name);
      try {
        await this.store.save(sandbox);
      } catch (error) {
        // The pool container stays unclaimed: its slot must not keep this user's prefix.
        if (member && (await attached) === 'mounted') {
          await this.cold?.releaseSlot(sandbox, member.name);
        }
        throw error;
      }
      sandboxLog(this.logger, sandbox).info('sandbox create requested', {
        template: resolved.template,
        cpu: resolved.cpu,
        memory_bytes: resolved.memoryBytes,
        network: resolved.network,
        ttl_seconds: resolved.ttlSeconds,
        // Names only: the values are the caller's secrets.
        env_names: Object.keys(resolved.env),
      });
      const fromPool = pool && member ? { pool, member, listing, attached } : undefined;
      return await this.inFlight.run(sandbox.sandboxId, () =>
        this.#provision(sandbox, resolved, fromPool),
      );
    } finally {
      if (member) pool?.release(member);
    }
  }

  async #provision(sandbox: Sandbox, config: ResolvedConfig, fromPool?: PoolClaim) {
    const { sandboxId, userId } = sandbox;
    const log = sandboxLog(this.logger, sandbox);
    let containerId: string | null = null;
    try {
      const claimStarted = performance.now();
      const claimed = fromPool ? await this.#claim(fromPool, sandbox, config) : null;
      if (claimed) {
        containerId = claimed.containerId;
        await this.#move(sandboxId, { status: 'starting', containerId }, 'pool container claimed');
        log.info('sandbox ready', {
          from_pool: true,
          ready_ms: Math.round(performance.now() - claimStarted),
        });
        const ready = { status: 'ready' as const, coldTier: claimed.coldTier };
        return await this.#move(sandboxId, ready, 'pool container set up');
      }
      let coldTier: ColdTierState = 'unavailable';
      const outcome = await this.#creatingOwn(async () => {
        const coldSlot = await this.cold?.slotFor(sandboxId);
        const created = await this.runtime.create({
          ...this.#containerSpec(sandbox, config),
          coldSlot,
        });
        containerId = created;
        // Before its start: the container's first process finds /data/cold in place.
        const attached = this.cold?.attach(sandbox, sandboxId) ?? Promise.resolve(coldTier);
        if (this.homes)
          log.info('home restored', { files: await this.homes.restore(userId, created) });
        coldTier = await attached;
        await this.#move(
          sandboxId,
          { status: 'starting', containerId: created },
          'container created',
        );
        const started = performance.now();
        const ready = await this.runtime.startAndWaitReady(
          created,
          this.settings.readyTimeoutSeconds * 1000,
          () => log.info('container started', { container_id: created }),
        );
        if (ready.ready)
          log.info('sandbox ready', { ready_ms: Math.round(performance.now() - started) });
        return ready;
      });
      if (outcome.ready)
        return await this.#move(sandboxId, { status: 'ready', coldTier }, 'ready marker seen');
      log.warn('sandbox failed to become ready', { reason: outcome.reason });
      if (containerId) {
        await this.cold?.release(sandbox, containerId);
        await this.runtime.remove(containerId);
      }
      return await this.#move(
        sandboxId,
        { status: 'failed', lastError: outcome.reason },
        outcome.reason,
      );
    } catch (error) {
      log.error('sandbox create failed', { error });
      const current = await this.store.get(sandboxId).catch(() => null);
      if (
        current &&
        (current.status === 'shutting_down' || TERMINAL_STATUSES.includes(current.status))
      ) {
        // Ended meanwhile (a DELETE): that end, queued behind this create, removes the container.
        throw new ConflictError(`Sandbox ${sandboxId} was ended while it was being created`, {
          cause: error,
        });
      }
      if (containerId) {
        await this.cold?.release(sandbox, containerId);
        await this.runtime.remove(containerId).catch(() => undefined);
      }
      const reason = (error as Error).message;
      await this.#move(sandboxId, { status: 'failed', lastError: reason }, reason).catch(
        () => undefined,
      );
      throw error;
    }
  }

  /** A create that starts its own container: the pool's top-up waits for it. */
  #creatingOwn<T>(create: () => Promise<T>): Promise<T> {
    return this.pool ? this.pool.whileCreating(create) : create();
  }

  /**
   * Makes a ready pool container (taken by `create`, which started its home's S3 list and its
   * cold-tier mount) the sandbox's: renamed to its id (the claim), then its limits and identity
   * set while the user's home is restored. Null when it is gone or cannot be set up (then the
   * sandbox is created as without a pool); a failed restore fails the create, as it would
   * without a pool.
   */
  async #claim(
    { pool, member, listing, attached = Promise.resolve('unavailable') }: PoolClaim,
    sandbox: Sandbox,
    config: ResolvedConfig,
  ): Promise<Claimed | null> {
    const log = sandboxLog(this.logger, sandbox);
    const claimed = await this.runtime.claimPoolContainer(member.name, sandbox.sandboxId);
    const { containerId } = member;
    if (!claimed) {
      log.warn('pool container gone before its claim: creating one', { pool_name: member.name });
      if ((await attached) === 'mounted') await this.cold?.releaseSlot(sandbox, member.name);
      return null;
    }
    log.info('pool container claimed', { pool_name: member.name, container_id: containerId });
    if (this.settings.claimPauseMs > 0) await delay(this.settings.claimPauseMs);
    const restored = this.homes
      ? this.homes.restore(sandbox.userId, containerId, listing)
      : Promise.resolve(undefined);
    restored.catch(() => undefined); // awaited below, whichever way the set-up goes
    try {
      await this.runtime.assignSandbox(
        containerId,
        {
          sandboxId: sandbox.sandboxId,
          userId: sandbox.userId,
          createdAt: sandbox.createdAt,
          template: config.template,
          ttlSeconds: config.ttlSeconds,
          idleTimeoutSeconds: config.idleTimeoutSeconds,
          env: identityEnv(sandbox, config.env),
        },
        pool.limitsFor(config),
      );
    } catch (error) {
      log.warn('claimed pool container could not be set up: creating one', { error });
      await restored.catch(() => undefined);
      await attached;
      await this.cold?.release(sandbox, containerId);
      // It never ran a command of the user's: nothing of theirs goes with it.
      await this.runtime.remove(containerId);
      return null;
    }
    const coldTier = await attached;
    try {
      const files = await restored;
      if (files !== undefined) log.info('home restored', { files });
    } catch (error) {
      await this.cold?.release(sandbox, containerId);
      await this.runtime.remove(containerId).catch(() => undefined);
      throw error;
    }
    return { containerId, coldTier };
  }

  list(userId?: string): Promise<Sandbox[]> {
    return this.store.list({ userId });
  }

  get(sandboxId: string): Promise<Sandbox> {
    return this.access.get(sandboxId);
  }

  async exec(sandboxId: string, request: ExecCommand): Promise<ExecOutcome> {
    const sandbox = await this.access.getCommandable(sandboxId);
    await this.access.markRunning(sandbox);
    const timeoutSeconds = request.timeout ?? this.settings.defaultCommandTimeoutSeconds;
    // While the command runs it is active, up to its timeout, whoever reads the registry.
    await this.access.touchActivity(sandbox, expiryOf(new Date(), timeoutSeconds));
    const started = performance.now();
    const result = await inContainer(sandboxId, () =>
      this.runtime.exec(sandbox.containerId, {
        command: request.command,
        user: request.user,
        timeoutSeconds,
        maxOutputBytes: this.settings.maxOutputBytes,
        cwd: request.cwd,
        env: request.env,
        stdin: request.stdin,
      }),
    );
    const durationMs = Math.round(performance.now() - started);
    await this.access.touchActivity(sandbox, new Date());
    const log = sandboxLog(this.logger, sandbox);
    log.debug('exec command', { command: request.command, cwd: request.cwd });
    log.info('exec finished', {
      exit_code: result.exitCode,
      timed_out: result.timedOut,
      duration_ms: durationMs,
      ...commandFingerprint(request.command),
      user: request.user,
      // Values are the caller's secrets, and so may be its stdin: a count and a length only.
      env_count: Object.keys(request.env ?? {}).length,
      stdin_length: request.stdin?.length ?? 0,
    });
    return { ...result, durationMs };
  }

  /** One write when the sandbox runs here; only a refused heartbeat reads it to say why. */
  async heartbeat(sandboxId: string): Promise<Sandbox> {
    const sandbox = await this.store.touchHeartbeat(sandboxId, this.settings.hostId, new Date());
    if (!sandbox) {
      await this.access.getLocal(sandboxId);
      throw sandboxNotFound(sandboxId);
    }
    sandboxLog(this.logger, sandbox).debug('heartbeat');
    return sandbox;
  }

  /** The sandbox now expires `ttlSeconds` from now; only an active one can be extended. */
  async extend(sandboxId: string, ttlSeconds: number): Promise<Sandbox> {
    await this.access.getLocal(sandboxId);
    const extended = await this.store.extend(sandboxId, ttlSeconds, ACTIVE_STATUSES);
    if (extended) {
      sandboxLog(this.logger, extended).info('sandbox extended', {
        ttl_seconds: ttlSeconds,
        expires_at: extended.expiresAt.toISOString(),
      });
      return extended;
    }
    const current = await this.get(sandboxId);
    throw new ConflictError(`Sandbox ${sandboxId} is not active (status: ${current.status})`);
  }

  /** Ends the sandbox now: the answer comes once the container is gone. */
  async destroy(sandboxId: string, graceful: boolean): Promise<void> {
    await this.access.getLocal(sandboxId);
    await this.ending.end(sandboxId, { graceful, reason: 'deleted by request' });
  }

  /** The agent says it is done: shutdown starts, the answer does not wait for it. */
  async complete(sandboxId: string, result: unknown): Promise<Sandbox> {
    const sandbox = await this.access.getLocal(sandboxId);
    sandboxLog(this.logger, sandbox).info('sandbox completed by agent', {
      has_result: result !== undefined,
    });
    return this.ending.begin(sandbox, 'completed by agent');
  }

  async reportError(
    sandboxId: string,
    message: string,
    details: Record<string, unknown>,
  ): Promise<Sandbox> {
    const sandbox = await this.access.getLocal(sandboxId);
    // The message is what an operator needs; the details are request body, so only their keys.
    sandboxLog(this.logger, sandbox).warn('error reported by agent', {
      agent_error: message.slice(0, 1000),
      details_keys: Object.keys(details ?? {}),
    });
    return this.ending.begin(sandbox, `agent reported an error: ${message}`);
  }

  #move(sandboxId: string, change: StatusChange, reason: string): Promise<Sandbox> {
    return moveStatus(this.store, this.logger, sandboxId, change, reason);
  }

  #containerSpec(sandbox: Sandbox, config: ResolvedConfig): ContainerSpec {
    const { settings } = this;
    return {
      name: sandbox.sandboxId,
      image: config.image,
      labels: {
        [SANDBOX_ID_LABEL]: sandbox.sandboxId,
        [USER_ID_LABEL]: sandbox.userId,
        [CREATED_AT_LABEL]: sandbox.createdAt.toISOString(),
        [HOST_ID_LABEL]: sandbox.hostId,
        [TEMPLATE_LABEL]: config.template,
        [TTL_LABEL]: String(config.ttlSeconds),
        [IDLE_LABEL]: String(config.idleTimeoutSeconds),
      },
      env: { ...identityEnv(sandbox, config.env), ...hostEnv(settings) },
      cpuLimit: config.cpu,
      memoryLimitBytes: config.memoryBytes,
      network: config.network,
    };
  }
}

/** A pool container made the sandbox's, and whether its /data/cold shows the user's prefix. */
interface PoolClaim {
  pool: WarmPool;
  member: PoolMember;
  /** The home's S3 list, under way. */
  listing: Promise<HomeListing> | undefined;
  /** The user's cold tier put into the pool container's slot, under way. */
  attached: Promise<ColdTierState> | undefined;
}

interface Claimed {
  containerId: string;
  coldTier: ColdTierState;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
