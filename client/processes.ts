import type { CallOptions, Transport } from './http.js';
import type { KillSignal, ProcessInfo, ProcessOutput, StartProcessRequest } from './types.js';

/** Where to read a process's output from, and how long to wait for some (0..20 s). */
export interface OutputRead extends CallOptions {
  stdout_offset?: number;
  stderr_offset?: number;
  wait?: number;
}

/** The whole output of a process that ended. */
export interface ProcessResult {
  stdout: string;
  stderr: string;
  status: ProcessInfo['status'];
  exit_code: number | null;
}

/** The longest an output read waits on the server (MAX_OUTPUT_WAIT_SECONDS). */
const LONG_POLL_SECONDS = 20;
/** What a long-poll's HTTP call may take beyond its wait. */
const LONG_POLL_MARGIN_MS = 30_000;

/** A sandbox's background processes. */
export class Processes {
  constructor(
    private readonly transport: Transport,
    readonly sandboxId: string,
  ) {}

  /** Starts `command` (bash -c) in the background; it runs until it ends, times out or is killed. */
  async start(
    command: string,
    options: Omit<StartProcessRequest, 'command'> & CallOptions = {},
  ): Promise<ProcessHandle> {
    const { signal, timeoutMs, ...request } = options;
    const info = await this.transport.json('startProcess', {
      params: { sandbox_id: this.sandboxId },
      body: { command, ...request },
      signal,
      timeoutMs,
    });
    return new ProcessHandle(this.transport, this.sandboxId, info);
  }

  /** The sandbox's processes, oldest first. */
  async list(options: CallOptions = {}): Promise<ProcessInfo[]> {
    const answer = await this.transport.json('listProcesses', {
      params: { sandbox_id: this.sandboxId },
      ...options,
    });
    return answer.processes;
  }

  /** One process, fetched. */
  async get(processId: string, options: CallOptions = {}): Promise<ProcessHandle> {
    const handle = this.connect(processId);
    await handle.refresh(options);
    return handle;
  }

  /** A handle on a process, without a call. */
  connect(processId: string): ProcessHandle {
    return new ProcessHandle(this.transport, this.sandboxId, undefined, processId);
  }
}

/** One background process: its output as it comes, its stdin, its end. */
export class ProcessHandle {
  readonly id: string;

  constructor(
    private readonly transport: Transport,
    readonly sandboxId: string,
    /** As last read from the API. */
    public info: ProcessInfo | undefined,
    processId?: string,
  ) {
    const id = info?.process_id ?? processId;
    if (!id) throw new TypeError('a process handle needs a process id');
    this.id = id;
  }

  private get params() {
    return { sandbox_id: this.sandboxId, process_id: this.id };
  }

  async refresh(options: CallOptions = {}): Promise<ProcessInfo> {
    this.info = await this.transport.json('getProcess', { params: this.params, ...options });
    return this.info;
  }

  /** One read of the output from the offsets on; with `wait`, a long-poll of up to 20 s. */
  async read(options: OutputRead = {}): Promise<ProcessOutput> {
    const { signal, timeoutMs, ...query } = options;
    return this.transport.json(
      'readProcessOutput',
      { params: this.params, query, signal, timeoutMs },
      (query.wait ?? 0) * 1000 + LONG_POLL_MARGIN_MS,
    );
  }

  /**
   * The output as it comes, one long-poll after another, until the process has ended and all of
   * it was read. Each item is one read that brought something (its text and the next offsets).
   */
  async *output(options: OutputRead = {}): AsyncGenerator<ProcessOutput, ProcessResult> {
    let offsets = { stdout_offset: options.stdout_offset, stderr_offset: options.stderr_offset };
    const wait = options.wait ?? LONG_POLL_SECONDS;
    let stdout = '';
    let stderr = '';
    for (;;) {
      const read = await this.read({ ...options, ...offsets, wait });
      offsets = { stdout_offset: read.stdout_offset, stderr_offset: read.stderr_offset };
      const nothingNew = read.stdout === '' && read.stderr === '';
      if (!nothingNew) {
        stdout += read.stdout;
        stderr += read.stderr;
        yield read;
      }
      if (read.status !== 'running' && nothingNew) {
        return { stdout, stderr, status: read.status, exit_code: read.exit_code };
      }
    }
  }

  /** Waits for the end and gives all of the output from the offsets on. */
  async wait(options: OutputRead = {}): Promise<ProcessResult> {
    const reads = this.output(options);
    for (;;) {
      const next = await reads.next();
      if (next.done) return next.value;
    }
  }

  /** Writes to the process's stdin; `eof` closes it after the data. */
  async write(data: string, options: { eof?: boolean } & CallOptions = {}): Promise<ProcessInfo> {
    const { eof, ...call } = options;
    this.info = await this.transport.json('writeProcessStdin', {
      params: this.params,
      body: { data, eof },
      ...call,
    });
    return this.info;
  }

  /** Closes the process's stdin. */
  closeStdin(options: CallOptions = {}): Promise<ProcessInfo> {
    return this.write('', { ...options, eof: true });
  }

  /** Kills it and everything it started; answers once they are gone. */
  async kill(signal: KillSignal = 'TERM', options: CallOptions = {}): Promise<ProcessInfo> {
    this.info = await this.transport.json('killProcess', {
      params: this.params,
      query: { signal },
      ...options,
    });
    return this.info;
  }
}
