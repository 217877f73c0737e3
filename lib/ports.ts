import type { Sandbox, SandboxStatus } from './domain/sandbox.js';

export interface StatusChange {
  status: SandboxStatus;
  containerId?: string | null;
  lastError?: string | null;
}

/** The registry of sandboxes. Implementations: memory (default), Postgres (later). */
export interface SandboxStore {
  save(sandbox: Sandbox): Promise<void>;
  get(sandboxId: string): Promise<Sandbox | null>;
  list(userId?: string): Promise<Sandbox[]>;
  delete(sandboxId: string): Promise<void>;
  /**
   * Moves a sandbox to a new status if the lifecycle table allows it; returns the updated sandbox,
   * or null when it does not exist. A forbidden move is a ConflictError.
   */
  updateStatus(sandboxId: string, change: StatusChange): Promise<Sandbox | null>;
  touchHeartbeat(sandboxId: string, at: Date): Promise<Sandbox | null>;
}

export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  cpuLimit: number;
  memoryLimitBytes: number;
  network: string;
}

export type ReadyOutcome = { ready: true } | { ready: false; reason: string };

export interface ExecRequest {
  command: string;
  user: string;
  timeoutSeconds: number;
  maxOutputBytes: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  timedOut: boolean;
}

/** The container engine, as the service needs it. Docker is the one implementation. */
export interface ContainerRuntime {
  ping(): Promise<void>;
  create(spec: ContainerSpec): Promise<string>;
  /**
   * Starts the container (calling onStarted once it runs) and resolves once the sandbox is
   * ready, or says why it is not.
   */
  startAndWaitReady(
    containerId: string,
    timeoutMs: number,
    onStarted: () => void,
  ): Promise<ReadyOutcome>;
  exec(containerId: string, request: ExecRequest): Promise<ExecResult>;
  /** Stops (gracefully within timeoutSeconds, or kills when 0); gone or stopped is success. */
  stop(containerId: string, timeoutSeconds: number): Promise<void>;
  /** Removes the container; already gone is success. */
  remove(containerId: string): Promise<void>;
}
