import { randomBytes } from 'node:crypto';
import type { Duplex, Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { ExecRequest, ExecResult } from '../../ports.js';
import { CappedOutput } from './cappedOutput.js';
import { toServiceError } from './dockerErrors.js';

const TIMEOUT_EXIT_CODE = 124;
/** How long a killed command's stream may take to close before the call returns anyway. */
const DRAIN_AFTER_KILL_MS = 750;
/** The in-container `timeout` is only a backstop for an orchestrator that died mid-exec. */
const BACKSTOP_GRACE_SECONDS = 5;

/**
 * Kills every process whose environment carries the exec's tag, which reaches children that left
 * the process group (setsid, nohup) without touching the sandbox's other commands. Repeats while
 * it still finds some, for processes forked during the sweep.
 */
const KILL_TAGGED = `
tag="MATRX_EXEC_ID=$1"
for _ in 1 2 3 4 5 6 7 8; do
  found=0
  for environ in /proc/[0-9]*/environ; do
    pid=\${environ#/proc/}; pid=\${pid%/environ}
    if grep -qzx -- "$tag" "$environ" 2>/dev/null; then kill -9 "$pid" 2>/dev/null && found=1; fi
  done
  [ "$found" = 0 ] && break
done`;

/** A Docker exec that has been started, with its output flowing into capped buffers. */
export interface StartedExec {
  exec: Docker.Exec;
  stream: Duplex;
  /** Every process of the command carries it in its environment as MATRX_EXEC_ID. */
  tag: string;
  stdout: CappedOutput;
  stderr: CappedOutput;
  /** Resolves once the output stream has ended, whatever ended it. */
  ended: Promise<void>;
}

/** When the in-container `timeout` kills a command whose orchestrator is gone. */
export function backstopSeconds(timeoutSeconds: number): number {
  return timeoutSeconds + BACKSTOP_GRACE_SECONDS;
}

export async function startExec(
  docker: Docker,
  containerId: string,
  options: {
    cmd: string[];
    user: string;
    maxOutputBytes: number;
    /** Keeps the exec's stdin open for the caller to write to. */
    stdin?: boolean;
    /** Sees stdout before the capped buffer does. */
    stdoutFilter?: (capped: CappedOutput) => Writable;
  },
): Promise<StartedExec> {
  const tag = randomBytes(8).toString('hex');
  let exec: Docker.Exec;
  let stream: Duplex;
  try {
    exec = await docker.getContainer(containerId).exec({
      Cmd: options.cmd,
      User: options.user,
      Env: [`MATRX_EXEC_ID=${tag}`],
      AttachStdin: options.stdin ?? false,
      AttachStdout: true,
      AttachStderr: true,
    });
    stream = await exec.start({ hijack: true, stdin: options.stdin ?? false });
  } catch (error) {
    throw toServiceError(error, `exec in container ${containerId}`);
  }
  const stdout = new CappedOutput(options.maxOutputBytes);
  const stderr = new CappedOutput(options.maxOutputBytes);
  docker.modem.demuxStream(stream, options.stdoutFilter?.(stdout) ?? stdout, stderr);
  const ended = new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  return { exec, stream, tag, stdout, stderr, ended };
}

/**
 * Waits for a started command until it ends or its timeout passes; past it, kills everything the
 * command started and answers 124.
 */
export async function finishExec(
  docker: Docker,
  containerId: string,
  started: StartedExec,
  request: ExecRequest,
): Promise<ExecResult> {
  const { stream, stdout, stderr, ended } = started;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), request.timeoutSeconds * 1000);
  });
  const outcome = await Promise.race([ended.then(() => 'ended' as const), deadline]);
  clearTimeout(timer);

  if (outcome === 'timeout') {
    await killTagged(docker, containerId, started.tag, request.user);
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, DRAIN_AFTER_KILL_MS))]);
    stream.destroy();
    return collect(TIMEOUT_EXIT_CODE, true);
  }
  return collect(await exitCodeOf(started.exec), false);

  function collect(exitCode: number, timedOut: boolean): ExecResult {
    return {
      exitCode,
      stdout: stdout.text(),
      stderr: stderr.text(),
      stdoutTruncated: stdout.truncated,
      stderrTruncated: stderr.truncated,
      timedOut,
      cwd: request.cwd ?? '/home/agent',
    };
  }
}

/** One command, in an exec of its own: what every command costs without a prepared shell. */
export async function execInContainer(
  docker: Docker,
  containerId: string,
  request: ExecRequest,
): Promise<ExecResult> {
  const started = await startExec(docker, containerId, {
    cmd: [
      'timeout',
      '-s',
      'KILL',
      String(backstopSeconds(request.timeoutSeconds)),
      'bash',
      '-c',
      request.command,
    ],
    user: request.user,
    maxOutputBytes: request.maxOutputBytes,
  });
  return finishExec(docker, containerId, started, request);
}

/**
 * Runs as the command's own user: reading another user's /proc/PID/environ needs CAP_SYS_PTRACE,
 * which containers do not get, and the same user may always signal its own processes.
 */
async function killTagged(
  docker: Docker,
  containerId: string,
  tag: string,
  user: string,
): Promise<void> {
  try {
    const killer = await docker.getContainer(containerId).exec({
      Cmd: ['bash', '-c', KILL_TAGGED, 'kill-tagged', tag],
      User: user,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await killer.start({ hijack: true, stdin: false });
    stream.resume();
    await new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', () => resolve());
    });
  } catch {
    // The container may have stopped meanwhile, which ends the processes all the same.
  }
}

/** The stream can end a moment before Docker records the exit code. */
async function exitCodeOf(exec: Docker.Exec): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null) return info.ExitCode;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return -1;
}
