import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type { ExecRequest, ExecResult } from '../../ports.js';
import { CappedOutput } from './cappedOutput.js';
import { startField, type StartDir } from './channel/channel.js';
import { CHANNEL_SCRIPT, SCRIPT_NAME } from './channel/script.js';
import { toServiceError } from './dockerErrors.js';

const TIMEOUT_EXIT_CODE = 124;
/** How long a killed command's stream may take to close before the call returns anyway. */
const DRAIN_AFTER_KILL_MS = 750;
/** The in-container `timeout` is only a backstop for an orchestrator that died mid-exec. */
const BACKSTOP_GRACE_SECONDS = 5;

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
    env?: Record<string, string>;
    /** Written to the command's stdin, which is then closed; without it there is none. */
    stdin?: string;
  },
): Promise<StartedExec> {
  const tag = randomBytes(8).toString('hex');
  const attachStdin = options.stdin !== undefined;
  let exec: Docker.Exec;
  let stream: Duplex;
  try {
    exec = await docker.getContainer(containerId).exec({
      Cmd: options.cmd,
      User: options.user,
      Env: [
        ...Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`),
        `MATRX_EXEC_ID=${tag}`,
      ],
      AttachStdin: attachStdin,
      AttachStdout: true,
      AttachStderr: true,
    });
    stream = await exec.start({ hijack: true, stdin: attachStdin });
  } catch (error) {
    throw toServiceError(error, `exec in container ${containerId}`);
  }
  const stdout = new CappedOutput(options.maxOutputBytes);
  const stderr = new CappedOutput(options.maxOutputBytes);
  docker.modem.demuxStream(stream, stdout, stderr);
  if (attachStdin) endStdin(stream, options.stdin ?? '');
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
      cwd: '',
    };
  }
}

/**
 * One command in an engine exec of its own, as the channel would run it (start directory,
 * environment, stdin, backstop), for a sandbox whose channel cannot start.
 */
export async function execOnce(
  docker: Docker,
  containerId: string,
  request: ExecRequest,
  start: StartDir,
): Promise<ExecResult> {
  const started = await startExec(docker, containerId, {
    cmd: [
      'bash',
      '-c',
      CHANNEL_SCRIPT,
      SCRIPT_NAME,
      '--once',
      start.cwd,
      String(startField(start)),
      String(backstopSeconds(request.timeoutSeconds)),
      request.command,
    ],
    user: request.user,
    maxOutputBytes: request.maxOutputBytes,
    env: request.env,
    stdin: request.stdin,
  });
  const result = await finishExec(docker, containerId, started, request);
  return withCwdFromStderr(result);
}

/** A probe: a command of ours (no start directory, no backstop), in an exec of its own. */
export async function probeInContainer(
  docker: Docker,
  containerId: string,
  request: ExecRequest,
): Promise<ExecResult> {
  const started = await startExec(docker, containerId, {
    cmd: ['bash', '-c', request.command],
    user: request.user,
    maxOutputBytes: request.maxOutputBytes,
  });
  return finishExec(docker, containerId, started, request);
}

/** `--once` writes the cwd the command ended in last on stderr, after a NUL. */
function withCwdFromStderr(result: ExecResult): ExecResult {
  const at = result.stderr.lastIndexOf('\0');
  const cwd = at >= 0 ? result.stderr.slice(at + 1) : '';
  if (at < 0 || !cwd.startsWith('/') || cwd.includes('\n')) return { ...result, cwd: '' };
  return { ...result, stderr: result.stderr.slice(0, at), cwd };
}

function endStdin(stream: Duplex, data: string): void {
  stream.write(data);
  // Half-closes the hijacked connection, so the command reads an end of file.
  (stream as Partial<{ end: () => void }>).end?.();
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
      Cmd: ['bash', '-c', CHANNEL_SCRIPT, SCRIPT_NAME, '--kill', tag],
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
