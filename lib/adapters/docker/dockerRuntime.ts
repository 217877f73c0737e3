import type { Duplex, Readable } from 'node:stream';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { ConflictError, DOCKER, NotFoundError, UnavailableError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type {
  ChannelStats,
  ContainerRuntime,
  ContainerSpec,
  DiskLimitMode,
  ExecRequest,
  ExecResult,
  ObservedContainer,
  OutputRequest,
  PoolContainer,
  ProcessInfo,
  ProcessOutput,
  ProcessSignal,
  ProcessStart,
  ReadyOutcome,
  StartOptions,
} from '../../ports.js';
import { POOL_CONFIG_LABEL, POOL_LABEL } from '../../domain/pool.js';
import type { ClaimLimits, SandboxIdentity } from '../../domain/pool.js';
import {
  COLD_PATH,
  CREATED_AT_LABEL,
  HOST_ID_LABEL,
  IDLE_LABEL,
  SANDBOX_ID_LABEL,
  TEMPLATE_LABEL,
  TTL_LABEL,
  SANDBOX_ID_PATTERN,
  USER_ID_LABEL,
} from '../../domain/sandbox.js';
import { loggedCall } from '../callLog.js';
import { dockerMessage, dockerStatus, toServiceError, treatingAsDone } from './dockerErrors.js';
import { Channels } from './channel/channels.js';
import { loadCompiledChannel } from './channel/script.js';
import {
  CLAIM_SECRET_LABEL,
  claimArchive,
  claimScript,
  newClaimSecret,
  RECORD_PATH,
  verifiedIdentity,
} from './claimRecord.js';
import { probeDiskLimitMode } from './diskQuota.js';
import { probeInContainer } from './execInContainer.js';
import { DockerFiles } from './files/dockerFiles.js';
import { delay, readyLineSeen, timedOut } from './readiness.js';

const READY_MARKER = '/tmp/.sandbox_ready';
/** For images that touch the marker without printing the line. */
const MARKER_POLL_MS = 250;
const PING_TIMEOUT_MS = 2000;
const PIDS_LIMIT = 4096;
const CLAIM_WRITE_TIMEOUT_SECONDS = 10;
const CLAIM_WRITE_OUTPUT_BYTES = 4096;
/** How much longer than the engine's own 10 s a killed container is waited for, and how often. */
const EXIT_WAIT_MS = 60_000;
const EXIT_POLL_MS = 500;
/** How long the sandbox's channels are given to kill its processes before the engine's kill. */
const KILL_EVERYTHING_TIMEOUT_MS = 2000;
/**
 * What root in a sandbox may do: what package managers need, nothing more (no NET_RAW, MKNOD,
 * SYS_CHROOT, SETFCAP...). The container runs as root so that an exec as root has them; Docker
 * gives none to a process of another user, so `agent` has no capability at all.
 */
const ROOT_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'SETUID', 'SETGID', 'KILL'];

export interface DockerRuntimeOptions {
  /** A Docker call slower than this is logged as slow. */
  slowCallMs: number;
  /** Whose command channel is opened as soon as a sandbox is ready. */
  firstCommandUser: string;
  /** Per stream and background process, the most output a sandbox keeps. */
  processOutputBytes: number;
  /** The OCI runtime of every sandbox (MATRX_DOCKER_RUNTIME); none: the engine's default. */
  ociRuntime?: string;
  /** MATRX_CONTAINER_DISK_LIMIT: the size of each writable layer, where the engine can hold it. */
  diskLimitBytes: number;
  /** The image the engine's support for that size is tried with (the sandbox image). */
  diskProbeImage: string;
}

export class DockerRuntime implements ContainerRuntime {
  readonly #channels: Channels;
  /** The sandboxes' files, reached through the same channels. */
  readonly files: DockerFiles;
  /**
   * Per container, what its record says once read (null: no valid record) or what its claim
   * wrote. A claimed container's identity never changes, so each is read once per process.
   */
  readonly #identities = new Map<string, Promise<SandboxIdentity | null>>();
  /** Pool containers' claim secrets, from their create or a listing: a claim needs no inspect. */
  /** Null: a container with no secret (not a pool one), which labels cannot change. */
  readonly #secrets = new Map<string, string | null>();
  #diskLimitMode: Promise<DiskLimitMode> | undefined;

  constructor(
    private readonly docker: Docker,
    private readonly logger: Logger,
    private readonly options: DockerRuntimeOptions,
  ) {
    this.#channels = new Channels(docker, {
      defaultUser: options.firstCommandUser,
      processOutputBytes: options.processOutputBytes,
      logger,
      sandboxEnv: async (containerId) => (await this.#identityOf(containerId))?.env ?? {},
      logged: (operation, containerId, run) => this.#call(operation, containerId, run, false),
      compiledChannel: loadCompiledChannel(),
    });
    this.files = new DockerFiles(docker, {
      exec: (containerId, request) => this.exec(containerId, request),
      logged: (operation, containerId, run) => this.#call(operation, containerId, run, false),
      openUpload: (containerId, user, path, mode) =>
        this.#channels.openUpload(containerId, user, path, mode),
      openForReading: (containerId, user, path) =>
        this.#channels.openForReading(containerId, user, path),
      moveIntoPlace: (containerId, user, staged, target) =>
        this.#channels.moveIntoPlace(containerId, user, staged, target),
    });
  }

  /** Ends the command channels; the Docker client itself holds nothing open. */
  close(): void {
    this.#channels.close();
  }

  /** Every call to the engine goes through here, to be logged once. */
  #call<T>(
    operation: string,
    container: string | undefined,
    run: () => Promise<T>,
    timed = true,
  ): Promise<T> {
    const slowMs = timed ? this.options.slowCallMs : undefined;
    return loggedCall(this.logger, 'docker', { operation, target: { container }, slowMs }, run);
  }

  ping(): Promise<void> {
    return this.#call('ping', undefined, async () => {
      const timeout = AbortSignal.timeout(PING_TIMEOUT_MS);
      try {
        // dockerode's typings omit the options its modem accepts.
        await this.docker.ping({ abortSignal: timeout } as never);
      } catch (error) {
        throw new UnavailableError(DOCKER, `${DOCKER} is not reachable`, { cause: error });
      }
    });
  }

  listSandboxContainers(): Promise<ObservedContainer[]> {
    return this.#call('list', undefined, async () => {
      const [labelled, pool] = await Promise.all([
        this.#list(SANDBOX_ID_LABEL),
        this.#list(`${POOL_LABEL}=true`),
      ]);
      const claimed = pool.filter((info) => isClaimed(info));
      return [
        ...labelled.filter((info) => info.Labels[POOL_LABEL] !== 'true').map(fromLabels),
        ...(await Promise.all(claimed.map((info) => this.#fromClaim(info)))),
      ];
    });
  }

  listPoolContainers(): Promise<PoolContainer[]> {
    return this.#call('list', undefined, async () => {
      const waiting = (await this.#list(`${POOL_LABEL}=true`)).filter((info) => !isClaimed(info));
      return waiting.map((info) => {
        const secret = info.Labels[CLAIM_SECRET_LABEL];
        if (secret) this.#secrets.set(info.Id, secret);
        return {
          containerId: info.Id,
          name: nameOf(info),
          hostId: info.Labels[HOST_ID_LABEL] ?? null,
          configHash: info.Labels[POOL_CONFIG_LABEL] ?? '',
          running: info.State === 'running',
        };
      });
    });
  }

  async #list(label: string): Promise<Docker.ContainerInfo[]> {
    try {
      return await this.docker.listContainers({ all: true, filters: { label: [label] } });
    } catch (error) {
      throw toServiceError(error, 'list containers');
    }
  }

  async #fromClaim(info: Docker.ContainerInfo): Promise<ObservedContainer> {
    const identity = await this.#identityOf(info.Id, info.Labels[CLAIM_SECRET_LABEL]);
    return {
      containerId: info.Id,
      sandboxId: nameOf(info),
      userId: identity?.userId ?? '',
      hostId: info.Labels[HOST_ID_LABEL] ?? null,
      createdAt: identity?.createdAt ?? null,
      running: info.State === 'running',
      template: identity?.template ?? null,
      ttlSeconds: identity?.ttlSeconds ?? null,
      idleTimeoutSeconds: identity?.idleTimeoutSeconds ?? 0,
      fromPool: true,
      coldSlot: bindsColdSlot(info),
    };
  }

  /** A claimed pool container's identity; null for any other container, or a claim cut short. */
  #identityOf(containerId: string, secret?: string): Promise<SandboxIdentity | null> {
    let identity = this.#identities.get(containerId);
    if (!identity) {
      const reading = this.#readIdentity(containerId, secret);
      this.#identities.set(containerId, reading);
      // A failed read (the engine down) is tried again; a missing record may be a claim under way.
      const forget = () => {
        if (this.#identities.get(containerId) === reading) this.#identities.delete(containerId);
      };
      reading.then((found) => found ?? forget(), forget);
      identity = reading;
    }
    return identity;
  }

  /** The container's claim secret; none for a container that is not a pool one (or is gone). */
  async #secretOf(containerId: string): Promise<string | undefined> {
    const known = this.#secrets.get(containerId);
    if (known !== undefined) return known ?? undefined;
    let labels: Record<string, string>;
    try {
      const info = await this.#call('inspect', containerId, () =>
        this.docker.getContainer(containerId).inspect(),
      );
      labels = info.Config.Labels ?? {};
    } catch (error) {
      if (dockerStatus(error) === 404) return undefined;
      throw toServiceError(error, `inspect container ${containerId}`);
    }
    const secret = labels[CLAIM_SECRET_LABEL];
    this.#secrets.set(containerId, secret ?? null);
    return secret;
  }

  async #readIdentity(containerId: string, knownSecret?: string): Promise<SandboxIdentity | null> {
    const secret = knownSecret ?? (await this.#secretOf(containerId));
    if (!secret) return null;
    let archive: Readable;
    try {
      archive = await this.readArchive(containerId, RECORD_PATH);
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
    const text = await firstFileOf(archive);
    return text === null ? null : verifiedIdentity(text, secret);
  }

  imageId(image: string): Promise<string> {
    return this.#call('inspect_image', image, async () => {
      try {
        return (await this.docker.getImage(image).inspect()).Id;
      } catch (error) {
        if (dockerStatus(error) === 404) {
          throw new UnavailableError(
            DOCKER,
            `Sandbox image ${image} is missing from the ${DOCKER}`,
            {
              cause: error,
            },
          );
        }
        throw toServiceError(error, `inspect image ${image}`);
      }
    });
  }

  claimPoolContainer(poolName: string, sandboxId: string): Promise<boolean> {
    return this.#call('rename', poolName, async () => {
      try {
        // By name: once renamed, the old name is gone, so a second claim of it finds nothing.
        await this.docker.getContainer(poolName).rename({ name: sandboxId });
        return true;
      } catch (error) {
        if (dockerStatus(error) === 404 || dockerStatus(error) === 409) return false;
        throw toServiceError(error, `rename container ${poolName}`);
      }
    });
  }

  async assignSandbox(
    containerId: string,
    identity: SandboxIdentity,
    limits: ClaimLimits | null,
  ): Promise<void> {
    const updated = limits ? this.#update(containerId, limits) : Promise.resolve();
    updated.catch(() => undefined); // awaited below
    const secret = await this.#secretOf(containerId);
    if (!secret) throw new ConflictError(`container ${containerId} is not a pool container`);
    // Known before it is written: the write's own command would otherwise look for the record.
    this.#identities.set(containerId, Promise.resolve(identity));
    try {
      await this.#writeClaim(containerId, identity, secret);
      await updated;
    } catch (error) {
      this.#identities.delete(containerId);
      throw error;
    }
  }

  /** Through root's channel, opened in the pool; the engine's archive call where that fails. */
  async #writeClaim(containerId: string, identity: SandboxIdentity, secret: string) {
    const written = await this.#channels
      .exec(containerId, {
        command: claimScript(identity, secret),
        user: 'root',
        timeoutSeconds: CLAIM_WRITE_TIMEOUT_SECONDS,
        maxOutputBytes: CLAIM_WRITE_OUTPUT_BYTES,
        keepCwd: true,
      })
      .catch((error: unknown) => ({ exitCode: -1, stderr: String(error) }));
    if (written.exitCode === 0) return;
    this.logger.warn('claim record not written through the channel: writing an archive', {
      container_id: containerId,
      exit_code: written.exitCode,
      stderr: written.stderr.slice(0, 500),
    });
    await this.writeArchive(containerId, '/', claimArchive(identity, secret));
  }

  #update(containerId: string, limits: ClaimLimits): Promise<void> {
    return this.#call('update', containerId, async () => {
      try {
        await this.docker.getContainer(containerId).update({
          NanoCpus: Math.round(limits.cpuLimit * 1e9),
          Memory: limits.memoryLimitBytes,
          // What the engine gives a container created with a memory limit and no swap setting.
          MemorySwap: limits.memoryLimitBytes * 2,
        });
      } catch (error) {
        throw toServiceError(error, `update container ${containerId}`);
      }
    });
  }

  create(spec: ContainerSpec): Promise<string> {
    return this.#call('create', spec.name, () => this.#create(spec));
  }

  async #create(spec: ContainerSpec): Promise<string> {
    const secret = spec.labels[POOL_LABEL] === 'true' ? newClaimSecret() : undefined;
    const sized = (await this.diskLimitMode()) === 'quota';
    try {
      const container = await this.docker.createContainer({
        name: spec.name,
        Image: spec.image,
        Labels: secret ? { ...spec.labels, [CLAIM_SECRET_LABEL]: secret } : spec.labels,
        // The image's own user (agent) would leave root's execs without their capabilities.
        User: 'root',
        Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
        HostConfig: {
          NanoCpus: Math.round(spec.cpuLimit * 1e9),
          Memory: spec.memoryLimitBytes,
          NetworkMode: spec.network,
          RestartPolicy: { Name: 'no' },
          PidsLimit: PIDS_LIMIT,
          SecurityOpt: ['no-new-privileges'],
          CapDrop: ['ALL'],
          CapAdd: ROOT_CAPABILITIES,
          ...(this.options.ociRuntime && { Runtime: this.options.ociRuntime }),
          // rslave: the user's cold tier, mounted on the host into the slot later, shows here.
          ...(spec.coldSlot && { Binds: [`${spec.coldSlot}:${COLD_PATH}:rslave`] }),
          ...(sized && { StorageOpt: { size: String(this.options.diskLimitBytes) } }),
        },
      });
      this.#secrets.set(container.id, secret ?? null);
      return container.id;
    } catch (error) {
      if (dockerStatus(error) === 404) {
        throw new UnavailableError(
          DOCKER,
          `Sandbox image ${spec.image} is missing from the ${DOCKER}: build it with npm run image`,
          { cause: error },
        );
      }
      throw toServiceError(error, `create container ${spec.name}`);
    }
  }

  async startAndWaitReady(
    containerId: string,
    timeoutMs: number,
    onStarted: () => void,
    options: StartOptions = {},
  ): Promise<ReadyOutcome> {
    const container = this.docker.getContainer(containerId);
    // Attached before start, so the ready line cannot be missed.
    const output = await this.#call('attach', containerId, async () => {
      try {
        return (await container.attach({ stream: true, stdout: true, stderr: true })) as Duplex;
      } catch (error) {
        throw toServiceError(error, `attach to container ${containerId}`);
      }
    });
    const stop = new AbortController();
    try {
      await this.#call('start', containerId, () =>
        treatingAsDone([304], `start container ${containerId}`, () => container.start()),
      );
      onStarted();
      const outcome = await this.#call(
        'wait_ready',
        containerId,
        () =>
          Promise.race([
            readyLineSeen(output),
            this.#markerOrExit(containerId, stop.signal),
            timedOut(timeoutMs, stop.signal),
          ]),
        false,
      );
      // A pool container's root channel writes its claim; its default user's runs what follows.
      if (outcome.ready) {
        this.#channels.warm(
          containerId,
          options.pool ? [this.options.firstCommandUser, 'root'] : undefined,
        );
      }
      return outcome;
    } finally {
      stop.abort();
      output.destroy();
    }
  }

  async #markerOrExit(containerId: string, signal: AbortSignal): Promise<ReadyOutcome> {
    const container = this.docker.getContainer(containerId);
    while (!signal.aborted) {
      await delay(MARKER_POLL_MS, signal);
      if (signal.aborted) break;
      const state = await this.#call('inspect', containerId, () => container.inspect()).then(
        (info) => info.State,
        () => ({ Running: false, ExitCode: 'unknown (container gone)' }),
      );
      if (!state.Running) {
        return { ready: false, reason: `container exited with code ${state.ExitCode}` };
      }
      const probe = await this.#probe(containerId, {
        command: `test -e ${READY_MARKER}`,
        user: 'root',
        timeoutSeconds: 5,
        maxOutputBytes: 1024,
      }).catch(() => null); // the container stopped meanwhile: the next inspect says so
      if (probe?.exitCode === 0) return { ready: true };
    }
    return { ready: false, reason: 'aborted' };
  }

  exec(containerId: string, request: ExecRequest): Promise<ExecResult> {
    return this.#channels.exec(containerId, request);
  }

  /** A command of ours, in an exec started for it alone. */
  #probe(containerId: string, request: ExecRequest): Promise<ExecResult> {
    return this.#call(
      'exec',
      containerId,
      () => probeInContainer(this.docker, containerId, request),
      false,
    );
  }

  startProcess(containerId: string, start: ProcessStart): Promise<ProcessInfo> {
    return this.#channels.startProcess(containerId, start);
  }

  listProcesses(containerId: string): Promise<ProcessInfo[]> {
    return this.#channels.listProcesses(containerId);
  }

  getProcess(containerId: string, processId: string): Promise<ProcessInfo | null> {
    return this.#channels.getProcess(containerId, processId);
  }

  readProcessOutput(
    containerId: string,
    processId: string,
    request: OutputRequest,
  ): Promise<ProcessOutput | null> {
    return this.#channels.readProcessOutput(containerId, processId, request);
  }

  writeProcessStdin(
    containerId: string,
    processId: string,
    data: string,
    eof: boolean,
  ): Promise<ProcessInfo | null> {
    return this.#channels.writeProcessStdin(containerId, processId, data, eof);
  }

  killProcess(
    containerId: string,
    processId: string,
    signal: ProcessSignal,
  ): Promise<ProcessInfo | null> {
    return this.#channels.killProcess(containerId, processId, signal);
  }

  channelStats(): ChannelStats {
    return this.#channels.stats();
  }

  diskLimitMode(): Promise<DiskLimitMode> {
    const { diskProbeImage, diskLimitBytes } = this.options;
    this.#diskLimitMode ??= this.#call('disk_limit_probe', undefined, () =>
      probeDiskLimitMode(this.docker, diskProbeImage, diskLimitBytes),
    ).catch((error: unknown) => {
      this.#diskLimitMode = undefined; // asked again next time
      throw error;
    });
    return this.#diskLimitMode;
  }

  diskUsage(containerId: string): Promise<number | null> {
    return this.#call(
      'inspect_size',
      containerId,
      async () => {
        try {
          // The engine takes `size` (and answers SizeRw with it); the typings know neither.
          const sized = { size: true } as Docker.ContainerInspectOptions;
          const info = await this.docker.getContainer(containerId).inspect(sized);
          return (info as { SizeRw?: number }).SizeRw ?? 0;
        } catch (error) {
          if (dockerStatus(error) === 404) return null;
          throw toServiceError(error, `measure the disk of container ${containerId}`);
        }
      },
      false,
    );
  }

  coldSlotOf(containerId: string): Promise<string | null> {
    return this.#call('inspect', containerId, async () => {
      try {
        const info = await this.docker.getContainer(containerId).inspect();
        return info.Mounts.find((mount) => mount.Destination === COLD_PATH)?.Source ?? null;
      } catch (error) {
        if (dockerStatus(error) === 404) return null;
        throw toServiceError(error, `inspect container ${containerId}`);
      }
    });
  }

  coldSlotsInUse(): Promise<Set<string>> {
    return this.#call('list', undefined, async () => {
      const [labelled, pool] = await Promise.all([
        this.#list(SANDBOX_ID_LABEL),
        this.#list(`${POOL_LABEL}=true`),
      ]);
      const slots = [...labelled, ...pool].flatMap((info) =>
        info.Mounts.filter((mount) => mount.Destination === COLD_PATH).map((mount) => mount.Source),
      );
      return new Set(slots);
    });
  }

  async stop(containerId: string, timeoutSeconds: number): Promise<void> {
    try {
      await this.#stopContainer(containerId, timeoutSeconds);
    } finally {
      this.#channels.discard(containerId);
    }
  }

  #stopContainer(containerId: string, timeoutSeconds: number): Promise<void> {
    const container = this.docker.getContainer(containerId);
    if (timeoutSeconds <= 0) {
      // 409: not running, which is what a kill wants.
      return this.#call('kill', containerId, () =>
        this.#untilExited(containerId, async () => {
          await this.#channels.killEverything(containerId, KILL_EVERYTHING_TIMEOUT_MS);
          await treatingAsDone([404, 409], `kill container ${containerId}`, () => container.kill());
        }),
      );
    }
    // A graceful stop takes as long as the sandbox needs, up to its timeout.
    return this.#call(
      'stop',
      containerId,
      () =>
        this.#untilExited(containerId, () =>
          treatingAsDone([304, 404], `stop container ${containerId}`, () =>
            container.stop({ t: timeoutSeconds }),
          ),
        ),
      false,
    );
  }

  /**
   * Runs a stop or kill. The engine gives up on a SIGKILLed container that has not exited within
   * 10 s ("did not receive an exit event"), which happens when thousands of processes must die (a
   * fork bomb at its pids limit), or when a fork bomb that fills the memory limit keeps the init
   * from exiting at all: the sandbox's channels kill every process, and the container is waited
   * for, a while longer.
   */
  async #untilExited(containerId: string, stop: () => Promise<void>): Promise<void> {
    try {
      return await stop();
    } catch (error) {
      if (!/did not receive an exit event/i.test(dockerMessage((error as Error).cause)))
        throw error;
      await this.#channels.killEverything(containerId, KILL_EVERYTHING_TIMEOUT_MS);
      await this.#liftCpuLimit(containerId);
      const deadline = Date.now() + EXIT_WAIT_MS;
      while (Date.now() < deadline) {
        const running = await this.docker
          .getContainer(containerId)
          .inspect()
          .then(
            (info) => info.State.Running,
            (inspectError: unknown) => dockerStatus(inspectError) !== 404,
          );
        if (!running) return;
        await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS));
      }
      throw error;
    }
  }

  /**
   * Gives a dying container the host's every core. Killed processes do not exit while their CPU
   * limit throttles them (the kernel throttles a task on its way back to user space, before it
   * acts on its SIGKILL), and a fork bomb at its memory limit spends the whole limit reclaiming.
   */
  async #liftCpuLimit(containerId: string): Promise<void> {
    try {
      const { NCPU } = (await this.docker.info()) as { NCPU: number };
      await this.docker.getContainer(containerId).update({ NanoCpus: NCPU * 1e9 });
    } catch (error) {
      this.logger.warn('could not lift the CPU limit of a container that does not exit', {
        container_id: containerId,
        reason: (error as Error).message,
      });
    }
  }

  readArchive(containerId: string, path: string): Promise<Readable> {
    return this.#call('get_archive', containerId, async () => {
      try {
        return (await this.docker.getContainer(containerId).getArchive({ path })) as Readable;
      } catch (error) {
        throw toServiceError(error, `read ${path} of container ${containerId}`);
      }
    });
  }

  changedPaths(containerId: string, under: string): Promise<Set<string>> {
    return this.#call('changes', containerId, async () => {
      let changes: unknown;
      try {
        changes = await this.docker.getContainer(containerId).changes();
      } catch (error) {
        throw toServiceError(error, `changes of container ${containerId}`);
      }
      // No changes at all: the engine answers `null`, which dockerode hands over as a raw buffer.
      if (!Array.isArray(changes)) return new Set<string>();
      const prefix = `${under.replace(/\/$/, '')}/`;
      // Kind 0 is modified, 1 added, 2 deleted.
      return new Set(
        (changes as { Path: string; Kind: number }[])
          .filter((change) => change.Kind !== 2 && change.Path.startsWith(prefix))
          .map((change) => change.Path.slice(prefix.length)),
      );
    });
  }

  writeArchive(containerId: string, path: string, tar: Readable): Promise<void> {
    return this.#call(
      'put_archive',
      containerId,
      async () => {
        try {
          const response = await this.docker.getContainer(containerId).putArchive(tar, { path });
          (response as unknown as Readable).resume?.();
        } catch (error) {
          throw toServiceError(error, `write ${path} of container ${containerId}`);
        }
      },
      false,
    );
  }

  remove(containerId: string): Promise<void> {
    this.#channels.discard(containerId);
    this.files.forget(containerId);
    this.#identities.delete(containerId);
    this.#secrets.delete(containerId);
    return this.#call('remove', containerId, async () => {
      try {
        await treatingAsDone([404], `remove container ${containerId}`, () =>
          this.docker.getContainer(containerId).remove({ force: true, v: true }),
        );
      } catch (error) {
        // 409: removal already in progress, which ends the same way.
        if (error instanceof Error && /already in progress/i.test(error.message)) return;
        throw error;
      }
    });
  }
}

function nameOf(info: Docker.ContainerInfo): string {
  return (info.Names[0] ?? '').replace(/^\//, '');
}

/** A pool container that a claim renamed to its sandbox's id. */
function isClaimed(info: Docker.ContainerInfo): boolean {
  return SANDBOX_ID_PATTERN.test(nameOf(info));
}

function fromLabels(info: Docker.ContainerInfo): ObservedContainer {
  const createdAt = new Date(info.Labels[CREATED_AT_LABEL] ?? '');
  return {
    containerId: info.Id,
    sandboxId: info.Labels[SANDBOX_ID_LABEL] ?? '',
    userId: info.Labels[USER_ID_LABEL] ?? '',
    hostId: info.Labels[HOST_ID_LABEL] ?? null,
    createdAt: Number.isNaN(createdAt.getTime()) ? null : createdAt,
    running: info.State === 'running',
    template: info.Labels[TEMPLATE_LABEL] ?? null,
    ttlSeconds: Number(info.Labels[TTL_LABEL]) || null,
    idleTimeoutSeconds: Number(info.Labels[IDLE_LABEL]) || 0,
    fromPool: false,
    coldSlot: bindsColdSlot(info),
  };
}

function bindsColdSlot(info: Docker.ContainerInfo): boolean {
  return info.Mounts.some((mount) => mount.Destination === COLD_PATH);
}

/** The text of the first file in a tar stream; null when there is none. */
async function firstFileOf(archive: Readable): Promise<string | null> {
  const extract = tar.extract();
  archive.pipe(extract);
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    }
    return null;
  } finally {
    archive.destroy();
  }
}
