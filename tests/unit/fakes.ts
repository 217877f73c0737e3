import { Readable } from 'node:stream';
import { Logger } from '@aws-lambda-powertools/logger';
import { MemorySandboxStore } from '../../lib/adapters/memory/memorySandboxStore.js';
import type {
  ContainerRuntime,
  ContainerSpec,
  ExecRequest,
  ExecResult,
  ReadyOutcome,
} from '../../lib/ports.js';
import { SandboxService } from '../../lib/service/sandboxService.js';

/** A container runtime in memory: records calls, and fails where a test tells it to. */
export class FakeRuntime implements ContainerRuntime {
  readonly calls: string[] = [];
  readonly running = new Set<string>();
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

  async create(spec: ContainerSpec): Promise<string> {
    this.#call('create');
    this.#next += 1;
    return `container-${spec.name}-${this.#next}`;
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
  }
}

export function serviceWith(runtime: FakeRuntime) {
  const store = new MemorySandboxStore({ stoppedRetentionMs: 60_000, maxStopped: 100 });
  const service = new SandboxService(
    store,
    runtime,
    {
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
    new Logger({ logLevel: 'CRITICAL' }),
    null,
  );
  return { store, service };
}
