import { newProcessId, PROCESS_ID_PATTERN } from '../domain/process.js';
import { processNotFound } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ContainerRuntime, ProcessInfo, ProcessOutput, ProcessSignal } from '../ports.js';
import { commandFingerprint } from './commandLog.js';
import { inContainer, type CommandableSandbox, type SandboxAccess } from './sandboxAccess.js';
import { sandboxLog } from './sandboxLog.js';

export interface ProcessServiceSettings {
  /** Bytes per stream an output read answers at most. */
  maxOutputBytes: number;
}

export interface StartProcess {
  command: string;
  user: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Seconds; without it the process runs until it ends, is killed or the sandbox ends. */
  timeout?: number;
}

export interface OutputQuery {
  stdoutOffset: number;
  stderrOffset: number;
  waitSeconds: number;
}

/**
 * Background processes of a sandbox: started, read, fed and killed in its container, which keeps
 * their state and output. Each request finds the sandbox as a command does (404, this host, 409
 * unless it takes commands) before it looks at the process.
 */
export class ProcessService {
  constructor(
    private readonly access: SandboxAccess,
    private readonly runtime: ContainerRuntime,
    private readonly settings: ProcessServiceSettings,
    private readonly logger: Logger,
  ) {}

  async start(sandboxId: string, request: StartProcess): Promise<ProcessInfo> {
    const sandbox = await this.access.getCommandable(sandboxId);
    await this.access.markRunning(sandbox);
    const processId = newProcessId();
    // The runtime's ConflictError for a taken id (1 in 2^48) would read as a stopped container.
    const started = await inContainer(sandboxId, () =>
      this.runtime.startProcess(sandbox.containerId, {
        processId,
        command: request.command,
        user: request.user,
        cwd: request.cwd,
        env: request.env,
        timeoutSeconds: request.timeout,
      }),
    );
    await this.access.touchActivity(sandbox, new Date());
    const log = sandboxLog(this.logger, sandbox);
    log.debug('process command', { process_id: processId, command: request.command });
    log.info('process started', {
      process_id: processId,
      ...commandFingerprint(request.command),
      user: request.user,
      timeout_seconds: request.timeout ?? null,
      // Values are the caller's secrets: a count only.
      env_count: Object.keys(request.env ?? {}).length,
    });
    return started;
  }

  async list(sandboxId: string): Promise<ProcessInfo[]> {
    const sandbox = await this.access.getCommandable(sandboxId);
    return inContainer(sandboxId, () => this.runtime.listProcesses(sandbox.containerId));
  }

  async get(sandboxId: string, processId: string): Promise<ProcessInfo> {
    const { found } = await this.#onProcess(sandboxId, processId, (containerId) =>
      this.runtime.getProcess(containerId, processId),
    );
    return found;
  }

  async readOutput(
    sandboxId: string,
    processId: string,
    query: OutputQuery,
  ): Promise<ProcessOutput> {
    const { found } = await this.#onProcess(sandboxId, processId, (containerId) =>
      this.runtime.readProcessOutput(containerId, processId, {
        stdoutOffset: query.stdoutOffset,
        stderrOffset: query.stderrOffset,
        waitMs: Math.round(query.waitSeconds * 1000),
        maxBytes: this.settings.maxOutputBytes,
      }),
    );
    return found;
  }

  /** A ConflictError (409) when the process has ended or its stdin was closed. */
  async writeStdin(
    sandboxId: string,
    processId: string,
    data: string,
    eof: boolean,
  ): Promise<ProcessInfo> {
    const { sandbox, found } = await this.#onProcess(
      sandboxId,
      processId,
      (containerId) => this.runtime.writeProcessStdin(containerId, processId, data, eof),
      { ownConflicts: true },
    );
    // The data may be a secret (a password typed in): its length only.
    sandboxLog(this.logger, sandbox).debug('process stdin written', {
      process_id: processId,
      data_length: data.length,
      eof,
    });
    return found;
  }

  /** Answers once the process and everything it started are gone. */
  async kill(sandboxId: string, processId: string, signal: ProcessSignal): Promise<ProcessInfo> {
    const { sandbox, found } = await this.#onProcess(sandboxId, processId, (containerId) =>
      this.runtime.killProcess(containerId, processId, signal),
    );
    sandboxLog(this.logger, sandbox).info('process killed', {
      process_id: processId,
      signal,
      status: found.status,
      exit_code: found.exitCode,
    });
    return found;
  }

  /** A call on one process; an id that cannot be one is not found without asking the runtime. */
  async #onProcess<T>(
    sandboxId: string,
    processId: string,
    call: (containerId: string) => Promise<T | null>,
    options: { ownConflicts?: boolean } = {},
  ): Promise<{ sandbox: CommandableSandbox; found: T }> {
    const sandbox = await this.access.getCommandable(sandboxId);
    if (!PROCESS_ID_PATTERN.test(processId)) throw processNotFound(processId);
    const found = await inContainer(sandboxId, () => call(sandbox.containerId), options);
    if (found === null) throw processNotFound(processId);
    return { sandbox, found };
  }
}
