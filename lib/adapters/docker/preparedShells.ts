import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { ExecRequest, ExecResult } from '../../ports.js';
import type { CappedOutput } from './cappedOutput.js';
import { backstopSeconds, finishExec, startExec, type StartedExec } from './execInContainer.js';

/**
 * Waits for one command on stdin (its backstop seconds on a line, then the command up to a NUL),
 * acknowledges it with one byte on stdout, and becomes exactly what a command's own exec runs.
 * Its variables are not exported, so the command's environment is the same either way.
 */
const SHELL_SCRIPT = `IFS= read -r matrx_seconds || exit 0
IFS= read -r -d '' matrx_command || exit 0
printf +
exec timeout -s KILL "$matrx_seconds" bash -c "$matrx_command" </dev/null`;

/**
 * How long after a command a shell starts. A caller that sends its next command at once is better
 * served by an exec of its own than by one competing with a shell still starting.
 */
const PREPARE_AFTER_MS = 10;
/**
 * bash reads a pipe a byte at a time (about a microsecond each here): past this, a command is
 * faster in an exec of its own.
 */
const MAX_PIPED_COMMAND_BYTES = 64 * 1024;

interface PreparedShell {
  user: string;
  maxOutputBytes: number;
  started: StartedExec;
  /** True once the shell has read its command; false if its stream ended first. */
  acknowledged: Promise<boolean>;
  ended: boolean;
}

/**
 * A Docker exec takes tens of milliseconds to start (the engine has the runtime join the
 * container), most of a short command's time. So after each command the container's next exec is
 * started ahead of time, as the same user with a tag of its own, and waits for its command: the
 * next call only writes it. One shell per container at most; without one, a command starts its
 * own exec as before.
 */
export class PreparedShells {
  readonly #byContainer = new Map<string, Promise<PreparedShell | undefined>>();
  readonly #scheduled = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly docker: Docker,
    /** Logs a shell's start as the runtime logs every call to the engine. */
    private readonly logged: (
      containerId: string,
      start: () => Promise<StartedExec>,
    ) => Promise<StartedExec>,
  ) {}

  has(containerId: string): boolean {
    return this.#byContainer.has(containerId);
  }

  /**
   * Runs the command in the container's prepared shell. Undefined, with the command not run, when
   * there is no usable shell for this user: the caller starts an exec of its own.
   */
  async run(containerId: string, request: ExecRequest): Promise<ExecResult | undefined> {
    const pending = this.#byContainer.get(containerId);
    if (!pending) return undefined;
    this.#byContainer.delete(containerId);
    const shell = await pending;
    if (!shell) return undefined;
    const fits =
      !shell.ended &&
      shell.user === request.user &&
      shell.maxOutputBytes === request.maxOutputBytes &&
      Buffer.byteLength(request.command) <= MAX_PIPED_COMMAND_BYTES &&
      // The shell reads up to a NUL; such a command goes the long way and fails there as before.
      !request.command.includes('\0');
    if (!fits) {
      shell.started.stream.destroy();
      return undefined;
    }
    socketOf(shell.started)?.ref();
    shell.started.stream.write(`${backstopSeconds(request.timeoutSeconds)}\n${request.command}\0`);
    if (!(await shell.acknowledged)) return undefined;
    return finishExec(this.docker, containerId, shell.started, request);
  }

  /** Starts the container's next shell shortly, unless a command comes first or it has one. */
  prepareSoon(containerId: string, user: string, maxOutputBytes: number): void {
    this.holdOff(containerId);
    const timer = setTimeout(() => {
      this.#scheduled.delete(containerId);
      this.#prepare(containerId, user, maxOutputBytes);
    }, PREPARE_AFTER_MS);
    timer.unref();
    this.#scheduled.set(containerId, timer);
  }

  /** A command came: a shell not started yet would only compete with it. */
  holdOff(containerId: string): void {
    clearTimeout(this.#scheduled.get(containerId));
    this.#scheduled.delete(containerId);
  }

  #prepare(containerId: string, user: string, maxOutputBytes: number): void {
    if (this.#byContainer.has(containerId)) return;
    const shell = this.#start(containerId, user, maxOutputBytes).catch(() => undefined);
    this.#byContainer.set(containerId, shell);
    void shell.then(async (started) => {
      if (!started) {
        this.#forget(containerId, shell);
        return;
      }
      await started.started.ended;
      this.#forget(containerId, shell);
    });
  }

  /** Ends the container's shell, if it has one: its container is stopping. */
  discard(containerId: string): void {
    this.holdOff(containerId);
    const shell = this.#byContainer.get(containerId);
    this.#byContainer.delete(containerId);
    void shell?.then((prepared) => prepared?.started.stream.destroy());
  }

  close(): void {
    const containers = new Set([...this.#byContainer.keys(), ...this.#scheduled.keys()]);
    for (const containerId of containers) this.discard(containerId);
  }

  #forget(containerId: string, shell: Promise<PreparedShell | undefined>): void {
    if (this.#byContainer.get(containerId) === shell) this.#byContainer.delete(containerId);
  }

  async #start(containerId: string, user: string, maxOutputBytes: number): Promise<PreparedShell> {
    let acknowledge: (read: boolean) => void = () => undefined;
    const acknowledged = new Promise<boolean>((resolve) => (acknowledge = resolve));
    const started = await this.logged(containerId, () =>
      startExec(this.docker, containerId, {
        cmd: ['bash', '-c', SHELL_SCRIPT],
        user,
        maxOutputBytes,
        stdin: true,
        stdoutFilter: (capped) => withoutFirstByte(capped, () => acknowledge(true)),
      }),
    );
    // An idle shell must not keep the process alive; run() refs it while a command runs.
    socketOf(started)?.unref();
    const shell: PreparedShell = { user, maxOutputBytes, started, acknowledged, ended: false };
    void started.ended.then(() => {
      shell.ended = true;
      acknowledge(false);
    });
    return shell;
  }
}

/** Passes stdout on to the command's buffer without the shell's acknowledgement byte. */
function withoutFirstByte(target: CappedOutput, onFirstByte: () => void): Writable {
  let seen = false;
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      let rest = chunk;
      if (!seen && chunk.length > 0) {
        seen = true;
        onFirstByte();
        rest = chunk.subarray(1);
      }
      // The buffer keeps what it is given at once, so the stream's end never overtakes it.
      if (rest.length > 0) target.write(rest);
      done();
    },
  });
}

function socketOf(started: StartedExec): Socket | undefined {
  const stream = started.stream as Partial<Socket>;
  return typeof stream.unref === 'function' ? (stream as Socket) : undefined;
}
