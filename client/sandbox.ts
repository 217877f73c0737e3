import type { CallOptions, Transport } from './http.js';
import { Files } from './files.js';
import { Processes } from './processes.js';
import type {
  CompleteResult,
  ErrorReportResult,
  ExecRequest,
  ExecResult,
  HeartbeatResult,
  SandboxInfo,
} from './types.js';

export type ExecOptions = Omit<ExecRequest, 'command'> & CallOptions;

/** The longest a command may run (MAX_EXEC_TIMEOUT_SECONDS). */
const MAX_EXEC_SECONDS = 600;
/** What an exec's HTTP call may take beyond the command's own timeout. */
const EXEC_MARGIN_MS = 30_000;
/** An end saves the home to S3 and waits for the container to stop: minutes at worst. */
const ENDING_TIMEOUT_MS = 180_000;

/** One sandbox: commands, background processes, files, its lifetime. */
export class Sandbox {
  readonly id: string;
  readonly processes: Processes;
  readonly files: Files;

  constructor(
    private readonly transport: Transport,
    /** As last read from the API (create, get, refresh, extend). */
    public info: SandboxInfo | undefined,
    sandboxId?: string,
  ) {
    const id = info?.sandbox_id ?? sandboxId;
    if (!id) throw new TypeError('a sandbox handle needs a sandbox id');
    this.id = id;
    this.processes = new Processes(transport, id);
    this.files = new Files(transport, id);
  }

  private get params() {
    return { sandbox_id: this.id };
  }

  async refresh(options: CallOptions = {}): Promise<SandboxInfo> {
    this.info = await this.transport.json('getSandbox', { params: this.params, ...options });
    return this.info;
  }

  /**
   * Runs `command` with bash -c and waits for it. A failing command is an answer (its exit_code),
   * not an error. Without `cwd` it starts where the last command ended.
   */
  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const { signal, timeoutMs, ...request } = options;
    return this.transport.json(
      'execCommand',
      { params: this.params, body: { command, ...request }, signal, timeoutMs },
      (request.timeout ?? MAX_EXEC_SECONDS) * 1000 + EXEC_MARGIN_MS,
    );
  }

  /** Records that the agent is alive (an idle timeout counts from it). */
  heartbeat(options: CallOptions = {}): Promise<HeartbeatResult> {
    return this.transport.json('heartbeat', { params: this.params, ...options });
  }

  /** The agent is done: graceful shutdown starts; `result` is logged. */
  complete(result?: unknown, options: CallOptions = {}): Promise<CompleteResult> {
    return this.transport.json('completeSandbox', {
      params: this.params,
      body: { result },
      ...options,
    });
  }

  /** The agent failed: the error is logged and graceful shutdown starts. */
  error(
    message: string,
    details: Record<string, unknown> = {},
    options: CallOptions = {},
  ): Promise<ErrorReportResult> {
    return this.transport.json('reportError', {
      params: this.params,
      body: { error: message, details },
      ...options,
    });
  }

  /** It now expires `ttlSeconds` from now. */
  async extend(ttlSeconds: number, options: CallOptions = {}): Promise<SandboxInfo> {
    this.info = await this.transport.json('extendSandbox', {
      params: this.params,
      body: { ttl_seconds: ttlSeconds },
      ...options,
    });
    return this.info;
  }

  /** Stops and removes it, its home saved first unless `graceful` is false. */
  async delete(options: { graceful?: boolean } & CallOptions = {}): Promise<void> {
    const { graceful, ...call } = options;
    await this.transport.json(
      'deleteSandbox',
      { params: this.params, query: { graceful }, ...call },
      ENDING_TIMEOUT_MS,
    );
  }
}
