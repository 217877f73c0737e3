import { Readable } from 'node:stream';
import { Logger } from '@aws-lambda-powertools/logger';
import { MemorySandboxStore } from '../../lib/adapters/memory/memorySandboxStore.js';
import type {
  ContainerRuntime,
  ContainerSpec,
  ExecRequest,
  ExecResult,
  ObservedContainer,
  ReadyOutcome,
} from '../../lib/ports.js';
import { Reconciler, type ReconcilerSettings } from '../../lib/service/reconciler.js';
import { SandboxService } from '../../lib/service/sandboxService.js';

export const HOST_ID = 'host-a';

/** A container runtime in memory: records calls, and fails where a test tells it to. */
export class FakeRuntime implements ContainerRuntime {
  readonly calls: string[] = [];
  readonly running = new Set<string>();
  /** Every container that exists, by id: what listSandboxContainers reports. */
  readonly containers = new Map<string, ObservedContainer>();
  readyOutcome: ReadyOutcome = { ready: true };
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

  async listSandboxContainers(): Promise<ObservedContainer[]> {
    this.#call('list');
    return [...this.containers.values()].map((container) => ({
      ...container,
      running: this.running.has(container.containerId),
    }));
  }

  async create(spec: ContainerSpec): Promise<string> {
    this.#call('create');
    this.#next += 1;
    const containerId = `container-${spec.name}-${this.#next}`;
    this.containers.set(containerId, {
      containerId,
      sandboxId: spec.name,
      userId: spec.labels['matrx.user_id'] ?? '',
      hostId: spec.labels['matrx.host_id'] ?? null,
      createdAt: new Date(spec.labels['matrx.created_at'] ?? Date.now()),
      running: false,
    });
    return containerId;
  }

  async startAndWaitReady(
    containerId: string,
    _timeoutMs: number,
    onStarted: () => void,
  ): Promise<ReadyOutcome> {
    this.#call('start');
    this.running.add(containerId);
    onStarted();
    return this.readyOutcome;
  }

  async exec(_containerId: string, request: ExecRequest): Promise<ExecResult> {
    this.#call('exec');
    return {
      exitCode: 0,
      stdout: request.command,
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      timedOut: false,
    };
  }

  /** What prepareExec was told, as `container:user`; not a call to the engine. */
  readonly prepared: string[] = [];

  prepareExec(containerId: string, user: string): void {
    this.prepared.push(`${containerId}:${user}`);
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
  }
}

export function serviceWith(runtime: FakeRuntime, hostId = HOST_ID) {
  const store = new MemorySandboxStore({ stoppedRetentionMs: 60_000, maxStopped: 100 });
  const logger = new Logger({ logLevel: 'CRITICAL' });
  const service = new SandboxService(
    store,
    runtime,
    {
      hostId,
      storeKind: 'memory',
      image: 'matrx-sandbox:test',
      network: 'none',
      cpuLimit: 1,
      memoryLimitBytes: 1024 ** 3,
      s3Bucket: 'bucket',
      s3Region: 'us-east-1',
      shutdownTimeoutSeconds: 1,
      readyTimeoutSeconds: 5,
      defaultCommandTimeoutSeconds: 30,
      maxOutputBytes: 1024,
    },
    logger,
    null,
  );
  const reconcilerWith = (settings: Partial<ReconcilerSettings> = {}) =>
    new Reconciler(
      store,
      runtime,
      service,
      {
        hostId,
        graceMs: 0,
        stuckMs: 60_000,
        maxSessionMs: 3_600_000,
        concurrency: 2,
        adoptOrphans: false,
        ...settings,
      },
      logger,
    );
  return { store, service, reconcilerWith };
}
