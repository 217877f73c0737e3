import { Readable } from 'node:stream';
import { Logger } from '@aws-lambda-powertools/logger';
import { MemorySandboxStore } from '../../lib/adapters/memory/memorySandboxStore.js';
import { ConflictError, NotFoundError } from '../../lib/errors.js';
import type { ClaimLimits, SandboxIdentity } from '../../lib/domain/pool.js';
import type * as ports from '../../lib/ports.js';
import { Reconciler, type ReconcilerSettings } from '../../lib/service/reconciler.js';
import { loadConfig } from '../../lib/config.js';
import { Adoption } from '../../lib/service/adoption.js';
import { InFlight } from '../../lib/service/inFlight.js';
import { composeServices } from '../../lib/services.js';
import { FakeFiles } from './fakeFiles.js';

export const HOST_ID = 'host-a';

/** A background process as the fake keeps it; tests write its output and end it. */
export interface FakeProcess {
  start: ports.ProcessStart;
  info: ports.ProcessInfo;
  stdout: string;
  stderr: string;
  stdin: string;
  stdinOpen: boolean;
}

/** A container runtime in memory: records calls, and fails where a test tells it to. */
export class FakeRuntime implements ports.ContainerRuntime {
  readonly calls: string[] = [];
  readonly running = new Set<string>();
  /** Every container that exists, by id: what listSandboxContainers reports. */
  readonly containers = new Map<string, ports.ObservedContainer>();
  readyOutcome: ports.ReadyOutcome = { ready: true };
  /** While set, a start waits for it before its container runs: a slow engine. */
  startGate: Promise<void> | undefined;
  failOn = new Map<string, Error>();
  #next = 0;

  #call(name: string): void {
    this.calls.push(name);
    const error = this.failOn.get(name);
    if (error) throw error;
  }

  async ping(): Promise<void> {
    this.#call('ping');
  }

  close(): void {}

  async listSandboxContainers(): Promise<ports.ObservedContainer[]> {
    this.#call('list');
    return [...this.containers.values()].map((container) => ({
      ...container,
      running: this.running.has(container.containerId),
    }));
  }

  /** Every container spec it was asked to create, in order. */
  readonly specs: ports.ContainerSpec[] = [];

  /** Unclaimed pool containers, by name. */
  readonly pool = new Map<string, ports.PoolContainer>();
  /** The image id each image name points to; a test changes it to "rebuild" an image. */
  readonly imageIds = new Map<string, string>();
  /** What each claimed container was assigned, by container id. */
  readonly assigned = new Map<string, { identity: SandboxIdentity; limits: ClaimLimits | null }>();

  async listPoolContainers(): Promise<ports.PoolContainer[]> {
    this.#call('listPool');
    return [...this.pool.values()].map((container) => ({
      ...container,
      running: this.running.has(container.containerId),
    }));
  }

  async imageId(image: string): Promise<string> {
    this.#call('imageId');
    return this.imageIds.get(image) ?? `id-of-${image}`;
  }

  async claimPoolContainer(poolName: string, sandboxId: string): Promise<boolean> {
    this.#call('claim');
    const member = this.pool.get(poolName);
    if (!member) return false;
    this.pool.delete(poolName);
    this.containers.set(member.containerId, {
      containerId: member.containerId,
      sandboxId,
      userId: '',
      hostId: member.hostId,
      createdAt: null,
      running: true,
      template: null,
      ttlSeconds: null,
      idleTimeoutSeconds: 0,
      fromPool: true,
      coldSlot: this.coldSlots.has(member.containerId),
    });
    return true;
  }

  async assignSandbox(
    containerId: string,
    identity: SandboxIdentity,
    limits: ClaimLimits | null,
  ): Promise<void> {
    this.#call('assign');
    const container = this.containers.get(containerId);
    if (!container) throw new NotFoundError(`No such container: ${containerId}`);
    this.assigned.set(containerId, { identity, limits });
    Object.assign(container, {
      userId: identity.userId,
      createdAt: identity.createdAt,
      template: identity.template,
      ttlSeconds: identity.ttlSeconds,
      idleTimeoutSeconds: identity.idleTimeoutSeconds,
    });
  }

  async create(spec: ports.ContainerSpec): Promise<string> {
    this.#call('create');
    this.specs.push(spec);
    this.#next += 1;
    const containerId = `container-${spec.name}-${this.#next}`;
    if (spec.coldSlot) this.coldSlots.set(containerId, spec.coldSlot);
    if (spec.labels['matrx.pool'] === 'true') {
      this.pool.set(spec.name, {
        containerId,
        name: spec.name,
        hostId: spec.labels['matrx.host_id'] ?? null,
        configHash: spec.labels['matrx.pool_config'] ?? '',
        running: false,
      });
      return containerId;
    }
    this.containers.set(containerId, {
      containerId,
      sandboxId: spec.name,
      userId: spec.labels['matrx.user_id'] ?? '',
      hostId: spec.labels['matrx.host_id'] ?? null,
      createdAt: new Date(spec.labels['matrx.created_at'] ?? Date.now()),
      running: false,
      template: spec.labels['matrx.template'] ?? null,
      ttlSeconds: Number(spec.labels['matrx.ttl_seconds']) || null,
      idleTimeoutSeconds: Number(spec.labels['matrx.idle_timeout_seconds']) || 0,
      fromPool: false,
      coldSlot: spec.coldSlot !== undefined,
    });
    return containerId;
  }

  async startAndWaitReady(
    containerId: string,
    _timeoutMs: number,
    onStarted: () => void,
  ): Promise<ports.ReadyOutcome> {
    this.#call('start');
    await this.startGate;
    this.running.add(containerId);
    onStarted();
    return this.readyOutcome;
  }

  /** Every exec request, in order. */
  readonly execRequests: ports.ExecRequest[] = [];

  /** What a command answers, over the default (exit 0, its own text on stdout). */
  execReplies: (request: ports.ExecRequest) => Partial<ports.ExecResult> = () => ({});

  async exec(_containerId: string, request: ports.ExecRequest): Promise<ports.ExecResult> {
    this.#call('exec');
    this.execRequests.push(request);
    return {
      exitCode: 0,
      stdout: request.command,
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      timedOut: false,
      cwd: request.cwd ?? '/home/agent',
      ...this.execReplies(request),
    };
  }

  /** Background processes by container, then by id: what a sandbox keeps of them. */
  readonly processes = new Map<string, Map<string, FakeProcess>>();
  /** Every output read, in order. */
  readonly outputRequests: ports.OutputRequest[] = [];

  #processesOf(containerId: string): Map<string, FakeProcess> {
    if (!this.containers.has(containerId)) {
      throw new NotFoundError(`No such container: ${containerId}`);
    }
    let byId = this.processes.get(containerId);
    if (!byId) this.processes.set(containerId, (byId = new Map()));
    return byId;
  }

  async startProcess(containerId: string, start: ports.ProcessStart): Promise<ports.ProcessInfo> {
    this.#call('startProcess');
    const byId = this.#processesOf(containerId);
    if (byId.has(start.processId)) throw new ConflictError(`${start.processId} is taken`);
    const info: ports.ProcessInfo = {
      processId: start.processId,
      command: start.command,
      user: start.user,
      cwd: start.cwd ?? '/home/agent',
      status: 'running',
      exitCode: null,
      startedAt: new Date(),
      endedAt: null,
    };
    byId.set(start.processId, { start, info, stdout: '', stderr: '', stdin: '', stdinOpen: true });
    return { ...info };
  }

  async listProcesses(containerId: string): Promise<ports.ProcessInfo[]> {
    this.#call('listProcesses');
    return [...this.#processesOf(containerId).values()].map((p) => ({ ...p.info }));
  }

  async getProcess(containerId: string, processId: string): Promise<ports.ProcessInfo | null> {
    this.#call('getProcess');
    const found = this.#processesOf(containerId).get(processId);
    return found ? { ...found.info } : null;
  }

  async readProcessOutput(
    containerId: string,
    processId: string,
    request: ports.OutputRequest,
  ): Promise<ports.ProcessOutput | null> {
    this.#call('readProcessOutput');
    this.outputRequests.push(request);
    const found = this.#processesOf(containerId).get(processId);
    if (!found) return null;
    const read = (text: string, offset: number) => {
      const bytes = Buffer.from(text).subarray(offset, offset + request.maxBytes);
      return { text: bytes.toString(), next: offset + bytes.length };
    };
    const stdout = read(found.stdout, request.stdoutOffset);
    const stderr = read(found.stderr, request.stderrOffset);
    return {
      stdout: stdout.text,
      stderr: stderr.text,
      stdoutOffset: stdout.next,
      stderrOffset: stderr.next,
      status: found.info.status,
      exitCode: found.info.exitCode,
    };
  }

  async writeProcessStdin(
    containerId: string,
    processId: string,
    data: string,
    eof: boolean,
  ): Promise<ports.ProcessInfo | null> {
    this.#call('writeProcessStdin');
    const found = this.#processesOf(containerId).get(processId);
    if (!found) return null;
    if (found.info.status !== 'running') throw new ConflictError(`Process ${processId} has ended`);
    if (!found.stdinOpen) throw new ConflictError(`The stdin of process ${processId} is closed`);
    found.stdin += data;
    if (eof) found.stdinOpen = false;
    return { ...found.info };
  }

  async killProcess(
    containerId: string,
    processId: string,
    signal: ports.ProcessSignal,
  ): Promise<ports.ProcessInfo | null> {
    this.#call('killProcess');
    const found = this.#processesOf(containerId).get(processId);
    if (!found) return null;
    if (found.info.status === 'running')
      this.endProcess(found, 'killed', signal === 'TERM' ? 143 : 137);
    return { ...found.info };
  }

  /** Ends a process as the sandbox would: it exited, was killed or timed out. */
  endProcess(
    process: FakeProcess,
    status: Exclude<ports.ProcessStatus, 'running'>,
    exitCode: number,
  ) {
    process.info = { ...process.info, status, exitCode, endedAt: new Date() };
  }

  /** The one process of that id, in whichever container. */
  process(processId: string): FakeProcess {
    for (const byId of this.processes.values()) {
      const found = byId.get(processId);
      if (found) return found;
    }
    throw new Error(`no process ${processId}`);
  }

  channels: ports.ChannelStats = { open: 0, fallback: 0, direct: 0 };

  channelStats(): ports.ChannelStats {
    return this.channels;
  }

  diskMode: ports.DiskLimitMode = 'measured';

  async diskLimitMode(): Promise<ports.DiskLimitMode> {
    this.#call('diskLimitMode');
    return this.diskMode;
  }

  /** Bytes each container wrote, by id; 0 when not set. */
  readonly diskUsed = new Map<string, number>();

  async diskUsage(containerId: string): Promise<number | null> {
    this.#call('diskUsage');
    return this.containers.has(containerId) ? (this.diskUsed.get(containerId) ?? 0) : null;
  }

  /** Host directories bound at /data/cold, by container. */
  readonly coldSlots = new Map<string, string>();

  async coldSlotOf(containerId: string): Promise<string | null> {
    return this.coldSlots.get(containerId) ?? null;
  }

  async coldSlotsInUse(): Promise<Set<string>> {
    return new Set(
      [...this.coldSlots]
        .filter(
          ([id]) =>
            this.containers.has(id) ||
            [...this.pool.values()].some((member) => member.containerId === id),
        )
        .map(([, slot]) => slot),
    );
  }

  async stop(containerId: string): Promise<void> {
    this.#call('stop');
    this.running.delete(containerId);
  }

  async readArchive(): Promise<Readable> {
    this.#call('readArchive');
    return Readable.from([]);
  }

  async changedPaths(): Promise<Set<string>> {
    return new Set();
  }

  async writeArchive(_containerId: string, _path: string, tar: Readable): Promise<void> {
    this.#call('writeArchive');
    tar.resume();
  }

  async remove(containerId: string): Promise<void> {
    this.#call('remove');
    this.running.delete(containerId);
    this.containers.delete(containerId);
    for (const [id, container] of this.containers) {
      if (container.sandboxId === containerId) this.containers.delete(id);
    }
    for (const [name, member] of this.pool) {
      if (member.containerId === containerId || name === containerId) this.pool.delete(name);
    }
  }
}

/** The services over a memory registry and this runtime, wired as the app wires them. */
/** A gate a test opens by hand. */
export function gate(): { opened: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

export function serviceWith(
  runtime: FakeRuntime,
  hostId = HOST_ID,
  env: Record<string, string> = {},
  cold: ports.ColdMounts | null = null,
) {
  const store = new MemorySandboxStore({ stoppedRetentionMs: 60_000, maxStopped: 100 });
  const logger = new Logger({ logLevel: 'CRITICAL' });
  const settings = loadConfig({
    MATRX_HOST_ID: hostId,
    MATRX_SANDBOX_IMAGE: 'matrx-sandbox:test',
    MATRX_DOCKER_NETWORK: 'none',
    MATRX_SHUTDOWN_TIMEOUT_SECONDS: '1',
    MATRX_READY_TIMEOUT_SECONDS: '5',
    MATRX_MAX_OUTPUT_BYTES: '1024',
    ...env,
  });
  const files = new FakeFiles();
  const services = composeServices(
    { store, runtime, files, objects: null, cold },
    settings,
    logger,
  );
  const reconcilerWith = (
    overrides: Partial<ReconcilerSettings> & { adoptOrphans?: boolean; inFlight?: InFlight } = {},
  ) => {
    // Another process's reconciler shares the registry, not this process's work in flight.
    const { adoptOrphans = false, inFlight = services.inFlight, ...reconcile } = overrides;
    const adoption = new Adoption(
      store,
      runtime,
      { hostId, adoptOrphans, defaultTtlSeconds: settings.MAX_SESSION_DURATION_SECONDS },
      logger,
    );
    return new Reconciler(
      store,
      runtime,
      services.ending,
      adoption,
      inFlight,
      {
        hostId,
        graceMs: 0,
        stuckMs: 60_000,
        concurrency: 2,
        ...reconcile,
      },
      logger,
      services.coldTier,
    );
  };
  return { store, service: services.sandboxes, ...services, fakeFiles: files, reconcilerWith };
}

/** Alice's sandbox, created and ready, with the fake runtime and the services around it. */
export async function withReadySandbox() {
  const runtime = new FakeRuntime();
  const parts = serviceWith(runtime);
  const sandbox = await parts.service.create('alice', {});
  return { runtime, sandbox, ...parts };
}
