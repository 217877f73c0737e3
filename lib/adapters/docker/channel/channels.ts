import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import type { ByteStream } from '../../../domain/bytes.js';
import { ConflictError, DOCKER, UnavailableError, ValidationError } from '../../../errors.js';
import type { Logger } from '../../../logger.js';
import type {
  ChannelStats,
  ExecRequest,
  ExecResult,
  OutputRequest,
  ProcessInfo,
  ProcessOutput,
  ProcessSignal,
  ProcessStart,
} from '../../../ports.js';
import { dockerStatus, toServiceError } from '../dockerErrors.js';
import { backstopSeconds, execOnce } from '../execInContainer.js';
import {
  Channel,
  ChannelEndedError,
  NoSuchUserError,
  type ChannelProcess,
  type ProcessSegments,
  type StartDir,
  within,
} from './channel.js';
import { CHANNEL_SCRIPT, COMPILED_CHANNEL_PATH, SCRIPT_NAME } from './script.js';
import { decodeChunk } from './utf8.js';

/** Where a sandbox's first command starts. */
const FIRST_CWD = '/home/agent';
/** A sandbox whose channel could not start tries again after this long. */
const RETRY_CHANNEL_MS = 60_000;
const NO_COMPILED_CHANNEL = 'no compiled command channel in this build';
const POLL_MS = 50;
/** How much of an upload waits to be sent on to the channel before the writer is held back. */
const UPLOAD_PIECE_BYTES = 1024 * 1024;
/** TERM, up to 5 s for the tree to go, then KILL: the channel answers well within this. */
const KILL_SETTLE_MS = 15_000;
/** Output is kept in segments, the oldest removed when the next would pass the bound. */
const SEGMENTS_KEPT = 16;
const MIN_SEGMENT_BYTES = 64 * 1024;

export interface ChannelsOptions {
  /** Whose channel a sandbox gets when it is ready, and lists its processes. */
  defaultUser: string;
  /** Per stream and process, the most output a sandbox keeps. */
  processOutputBytes: number;
  logger: Logger;
  /**
   * The environment a sandbox's commands get over the container's own: empty but for a claimed
   * pool container, whose container was made before it had a user.
   */
  sandboxEnv: (containerId: string) => Promise<Record<string, string>>;
  /** Logs a call to the engine as the runtime logs each of them. */
  logged: <T>(operation: string, containerId: string, run: () => Promise<T>) => Promise<T>;
  /** The compiled channel's binary, put into each sandbox; without it commands take the script. */
  compiledChannel: Buffer | undefined;
}

/** The compiled channel runs commands; the script runs background processes (and commands without the compiled one). */
type ChannelKind = 'compiled' | 'script';

const PROGRAMS: Record<ChannelKind, string[]> = {
  compiled: [COMPILED_CHANNEL_PATH],
  script: ['bash', '-c', CHANNEL_SCRIPT, SCRIPT_NAME],
};

/** A kind of channel that could not start in a sandbox, why, and until when it is not tried. */
interface Unavailable {
  reason: string;
  until: number;
}

interface SandboxChannels {
  byUser: Record<ChannelKind, Map<string, Promise<Channel>>>;
  /** Where the last command ended. */
  cwd: string | undefined;
  /** The sandbox's /run/matrx exists. */
  prepared: Promise<void> | undefined;
  /** The command channel could not start: commands take a plain engine exec. */
  fallback: Unavailable | undefined;
  warned: boolean;
  processUsers: Map<string, string>;
}

/**
 * The channels of this host's sandboxes, per sandbox and user: the compiled command channel,
 * opened when a sandbox is ready or on the user's first command, and the script's process channel,
 * on the user's first background process; each opened again when it ends. A sandbox whose command
 * channel cannot start runs each command in a plain engine exec instead, and says so once at
 * WARNING.
 */
export class Channels {
  readonly #sandboxes = new Map<string, SandboxChannels>();
  /** Open channels whose requests take their own pipes rather than the engine. */
  readonly #direct = new Set<Channel>();

  constructor(
    private readonly docker: Docker,
    private readonly options: ChannelsOptions,
  ) {
    if (!options.compiledChannel) {
      options.logger.warn(
        `${NO_COMPILED_CHANNEL}: commands take a plain engine exec (npm run build needs a C compiler)`,
      );
    }
  }

  stats(): ChannelStats {
    let open = 0;
    let fallback = 0;
    const now = Date.now();
    for (const sandbox of this.#sandboxes.values()) {
      open += sandbox.byUser.compiled.size + sandbox.byUser.script.size;
      if (sandbox.fallback && sandbox.fallback.until > now) fallback += 1;
    }
    return { open, fallback, direct: this.#direct.size };
  }

  /** Opens these users' channels (the default user's when none is named) ahead of use. */
  warm(containerId: string, users: string[] = [this.options.defaultUser]): void {
    for (const user of users) {
      void this.#commandChannel(containerId, user).catch(() => undefined);
    }
  }

  async exec(containerId: string, request: ExecRequest): Promise<ExecResult> {
    const sandbox = this.#sandbox(containerId);
    const start = request.keepCwd
      ? { ...this.#startDir(sandbox, undefined), kept: true }
      : this.#startDir(sandbox, request.cwd);
    const channel = await this.#commandChannel(containerId, request.user);
    const withEnv = { ...request, env: await this.#envOf(containerId, request.env) };
    const result = channel
      ? await channel.exec(withEnv, start, backstopSeconds(request.timeoutSeconds))
      : await this.options.logged('exec', containerId, () =>
          execOnce(this.docker, containerId, withEnv, start),
        );
    // A command that left no record (it failed to start, or replaced its shell) moves nothing.
    if (result.cwd && !start.kept) sandbox.cwd = result.cwd;
    return { ...result, cwd: sandbox.cwd ?? FIRST_CWD };
  }

  async startProcess(containerId: string, start: ProcessStart): Promise<ProcessInfo> {
    const sandbox = this.#sandbox(containerId);
    const channel = await this.#requiredChannel(containerId, start.user);
    const process = await channel.startProcess(
      { ...start, env: await this.#envOf(containerId, start.env) },
      this.#startDir(sandbox, start.cwd),
      outputSegments(this.options.processOutputBytes),
    );
    sandbox.processUsers.set(start.processId, start.user);
    return withoutSettled(process);
  }

  async listProcesses(containerId: string): Promise<ProcessInfo[]> {
    const channel = await this.#listingChannel(containerId);
    const processes = await channel.listProcesses();
    const sandbox = this.#sandbox(containerId);
    for (const process of processes) sandbox.processUsers.set(process.processId, process.user);
    return processes
      .sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime())
      .map(withoutSettled);
  }

  async getProcess(containerId: string, processId: string): Promise<ProcessInfo | null> {
    const process = await (await this.#listingChannel(containerId)).getProcess(processId);
    return process && withoutSettled(process);
  }

  async readProcessOutput(
    containerId: string,
    processId: string,
    request: OutputRequest,
  ): Promise<ProcessOutput | null> {
    const channel = await this.#ownerChannel(containerId, processId);
    if (!channel) return null;
    const deadline = Date.now() + request.waitMs;
    for (;;) {
      const read = await channel.readOutput(
        processId,
        { stdout: request.stdoutOffset, stderr: request.stderrOffset },
        request.maxBytes,
      );
      if (!read) return null;
      const running = read.process.status === 'running';
      const stdout = decodeChunk(read.stdout, running);
      const stderr = decodeChunk(read.stderr, running);
      const fresh = stdout.offset > request.stdoutOffset || stderr.offset > request.stderrOffset;
      if (fresh || stdout.text || stderr.text || !running || Date.now() >= deadline) {
        return {
          stdout: stdout.text,
          stderr: stderr.text,
          stdoutOffset: stdout.offset,
          stderrOffset: stderr.offset,
          status: read.process.status,
          exitCode: read.process.exitCode,
        };
      }
      await delay(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    }
  }

  async writeProcessStdin(
    containerId: string,
    processId: string,
    data: string,
    eof: boolean,
  ): Promise<ProcessInfo | null> {
    const channel = await this.#ownerChannel(containerId, processId);
    if (!channel) return null;
    const outcome = await channel.writeStdin(processId, Buffer.from(data), eof);
    if (outcome === 'missing') return null;
    if (outcome === 'ended') throw new ConflictError(`Process ${processId} has ended`);
    if (outcome === 'closed') throw new ConflictError(`Process ${processId}'s stdin is closed`);
    if (outcome === 'full') {
      throw new ConflictError(`Process ${processId} is not reading its stdin (it is full)`);
    }
    return withoutSettled(outcome);
  }

  async killProcess(
    containerId: string,
    processId: string,
    signal: ProcessSignal,
  ): Promise<ProcessInfo | null> {
    const channel = await this.#ownerChannel(containerId, processId);
    if (!channel) return null;
    let process = await channel.terminate(processId, signal);
    const deadline = Date.now() + KILL_SETTLE_MS;
    while (process && !(process.settled && process.status !== 'running')) {
      if (Date.now() >= deadline) break;
      await delay(POLL_MS);
      process = await channel.getProcess(processId);
    }
    return process && withoutSettled(process);
  }

  /**
   * A new file at `path` as the user, opened by the user's compiled channel: written by this side
   * where it can open the channel's files, else through the channel a piece at a time (what is
   * written goes on as it comes; its end closes the file and fails with the sandbox's reason if a
   * piece could not be written). Undefined where the sandbox has no compiled channel: the caller
   * takes the engine's archive call.
   */
  async openUpload(
    containerId: string,
    user: string,
    path: string,
    mode: number,
  ): Promise<Writable | undefined> {
    const channel = await this.#commandChannel(containerId, user);
    if (!channel) return undefined;
    const id = randomBytes(8).toString('hex');
    const opened = await channel.openUpload(id, path, mode);
    if ('refused' in opened) {
      throw new UnavailableError(DOCKER, `The sandbox could not make ${path}: ${opened.refused}`);
    }
    if (opened.local !== undefined) {
      return createWriteStream('', { fd: opened.local, highWaterMark: UPLOAD_PIECE_BYTES });
    }
    let closed = false;
    const close = async () => {
      if (closed) return undefined;
      closed = true;
      return channel.closeFile(id);
    };
    return new Writable({
      highWaterMark: UPLOAD_PIECE_BYTES,
      // What came while a piece was sent goes as the next one.
      writev: (chunks, done) => {
        const parts = chunks.map(({ chunk }) => chunk as Buffer);
        channel.uploadPiece(id, parts).then(() => done(), done);
      },
      final: (done) => {
        close().then(
          (failed) =>
            done(
              failed
                ? new UnavailableError(DOCKER, `The sandbox could not write ${path}: ${failed}`)
                : undefined,
            ),
          done,
        );
      },
      destroy: (error, done) => {
        void close().catch(() => undefined);
        done(error);
      },
    });
  }

  /**
   * The regular file at `path` as the user may read it, opened by the user's compiled channel
   * and read by this side; undefined where that cannot be (no compiled channel, a side that cannot
   * open the channel's files, or a file the user cannot open: the caller's slower way says why).
   */
  async openForReading(
    containerId: string,
    user: string,
    path: string,
  ): Promise<ByteStream | undefined> {
    const channel = await this.#commandChannel(containerId, user);
    if (!channel) return undefined;
    const opened = await channel.openForReading(randomBytes(8).toString('hex'), path);
    if ('refused' in opened) return undefined;
    const { size, local } = opened;
    if (size === 0) {
      closeSync(local);
      return { stream: Readable.from([]), length: 0 };
    }
    return {
      stream: createReadStream('', { fd: local, end: size - 1, highWaterMark: UPLOAD_PIECE_BYTES }),
      length: size,
    };
  }

  /**
   * The staged file put in place at `target` by the user's compiled channel with one rename: the
   * target's entry (files.sh's fields), or undefined where the file script must do it (no compiled
   * channel, or a case the channel leaves to the script).
   */
  async moveIntoPlace(
    containerId: string,
    user: string,
    staged: string,
    target: string,
  ): Promise<string[] | undefined> {
    const channel = await this.#commandChannel(containerId, user);
    return channel?.moveIntoPlace(staged, target);
  }

  /**
   * Has each open compiled channel of the sandbox kill every process of its user (the sandbox is
   * being stopped), waiting for them up to `timeoutMs`; a channel that cannot is passed over.
   */
  async killEverything(containerId: string, timeoutMs: number): Promise<void> {
    const open = [...(this.#sandboxes.get(containerId)?.byUser.compiled.values() ?? [])];
    const killed = open.map((channel) => channel.then((opened) => opened.killEverything()));
    await within(Promise.allSettled(killed), timeoutMs);
  }

  /** Closes the sandbox's channels: its container is stopping. */
  discard(containerId: string): void {
    const sandbox = this.#sandboxes.get(containerId);
    this.#sandboxes.delete(containerId);
    const open = sandbox
      ? [...sandbox.byUser.compiled.values(), ...sandbox.byUser.script.values()]
      : [];
    for (const channel of open) {
      void channel.then((opened) => opened.close()).catch(() => undefined);
    }
  }

  close(): void {
    for (const containerId of [...this.#sandboxes.keys()]) this.discard(containerId);
  }

  #sandbox(containerId: string): SandboxChannels {
    let sandbox = this.#sandboxes.get(containerId);
    if (!sandbox) {
      sandbox = {
        byUser: { compiled: new Map(), script: new Map() },
        cwd: undefined,
        prepared: undefined,
        fallback: undefined,
        warned: false,
        processUsers: new Map(),
      };
      this.#sandboxes.set(containerId, sandbox);
    }
    return sandbox;
  }

  #startDir(sandbox: SandboxChannels, cwd: string | undefined): StartDir {
    return cwd === undefined
      ? { cwd: sandbox.cwd ?? FIRST_CWD, implicit: true }
      : { cwd, implicit: false };
  }

  /**
   * The compiled channel that runs the user's commands, or undefined for the plain path: where it
   * cannot start (said at WARNING once per sandbox, tried again a minute later), where this build
   * has none (said once as the service starts), and for a user the image does not have (the plain
   * path answers what the engine says of it).
   */
  async #commandChannel(containerId: string, user: string): Promise<Channel | undefined> {
    const sandbox = this.#sandbox(containerId);
    if (!this.options.compiledChannel) {
      sandbox.fallback ??= { reason: NO_COMPILED_CHANNEL, until: Infinity };
      return undefined;
    }
    if (sandbox.fallback && sandbox.fallback.until > Date.now()) return undefined;
    try {
      return await this.#channel(containerId, user, 'compiled');
    } catch (error) {
      if (error instanceof NoSuchUserError) return undefined;
      if (!(error instanceof ChannelEndedError)) throw error;
      // A channel also ends when its container stops under it: that sandbox is ending, not broken.
      await this.#ensureRunning(containerId);
      sandbox.fallback = { reason: error.message, until: Date.now() + RETRY_CHANNEL_MS };
      if (!sandbox.warned) {
        sandbox.warned = true;
        this.options.logger.warn('command channel unavailable: commands take a plain engine exec', {
          container_id: containerId,
          user,
          reason: error.message,
        });
      }
      return undefined;
    }
  }

  async #ensureRunning(containerId: string): Promise<void> {
    let running: boolean;
    try {
      running = (await this.docker.getContainer(containerId).inspect()).State.Running;
    } catch (error) {
      throw toServiceError(error, `inspect container ${containerId}`);
    }
    if (!running) throw new ConflictError(`container ${containerId} is not running`);
  }

  /** The user's process channel (the script's); a 503 naming why when it cannot start. */
  async #requiredChannel(containerId: string, user: string): Promise<Channel> {
    try {
      return await this.#channel(containerId, user, 'script');
    } catch (error) {
      if (error instanceof NoSuchUserError) {
        throw new ValidationError([{ loc: ['user'], msg: error.message, type: 'value_error' }]);
      }
      if (!(error instanceof ChannelEndedError)) throw error;
      await this.#ensureRunning(containerId);
      throw new UnavailableError(
        DOCKER,
        `Background processes need the sandbox's process channel, which could not start: ${error.message}`,
      );
    }
  }

  /** Any open channel of the sandbox reads its processes' state; the default user's otherwise. */
  async #listingChannel(containerId: string): Promise<Channel> {
    const sandbox = this.#sandbox(containerId);
    const scripts = sandbox.byUser.script;
    const open = scripts.get(this.options.defaultUser) ?? [...scripts.values()][0];
    return open ?? this.#requiredChannel(containerId, this.options.defaultUser);
  }

  /** A process's output and stdin are its user's alone: its user's channel reads them. */
  async #ownerChannel(containerId: string, processId: string): Promise<Channel | null> {
    const sandbox = this.#sandbox(containerId);
    let user = sandbox.processUsers.get(processId);
    if (user === undefined) {
      user = (await (await this.#listingChannel(containerId)).getProcess(processId))?.user;
      if (user === undefined) return null;
      sandbox.processUsers.set(processId, user);
    }
    return this.#requiredChannel(containerId, user);
  }

  #channel(containerId: string, user: string, kind: ChannelKind): Promise<Channel> {
    const sandbox = this.#sandbox(containerId);
    const byUser = sandbox.byUser[kind];
    let channel = byUser.get(user);
    if (!channel) {
      const opening = this.#open(containerId, user, sandbox, kind);
      byUser.set(user, opening);
      const forget = () => {
        if (byUser.get(user) === opening) byUser.delete(user);
      };
      opening.then(
        (open) =>
          open.ended.then((reason) => {
            forget();
            const level = open.stalled ? 'warn' : 'debug';
            this.options.logger[level]('command channel ended', {
              container_id: containerId,
              user,
              kind,
              reason,
            });
            this.#killOrphans(containerId, user, open.runningTags);
          }),
        forget,
      );
      channel = opening;
    }
    return channel;
  }

  async #open(
    containerId: string,
    user: string,
    sandbox: SandboxChannels,
    kind: ChannelKind,
  ): Promise<Channel> {
    sandbox.prepared ??= this.#prepare(containerId).catch((error: unknown) => {
      sandbox.prepared = undefined;
      throw error;
    });
    await sandbox.prepared;
    const { channel, storedCwd } = await this.options.logged('open_channel', containerId, () =>
      Channel.open(this.docker, containerId, user, PROGRAMS[kind], {
        offersPipes: kind === 'compiled',
      }),
    );
    sandbox.cwd ??= storedCwd || undefined;
    if (channel.direct) {
      this.#direct.add(channel);
      void channel.ended.then(() => this.#direct.delete(channel));
    }
    if (kind === 'compiled') sandbox.fallback = undefined;
    return channel;
  }

  /**
   * A claimed pool container's sandbox environment under the request's, given with each command
   * (not when its channel opens): a pool container's channels open before its claim.
   */
  async #envOf(containerId: string, env: Record<string, string> | undefined) {
    return { ...(await this.options.sandboxEnv(containerId)), ...env };
  }

  /**
   * A channel that ended (killed from inside the sandbox) took its loop, which would have ended its
   * commands at their deadline, with it: a new channel ends them now, as their callers were told.
   */
  #killOrphans(containerId: string, user: string, tags: string[]): void {
    if (tags.length === 0 || !this.#sandboxes.has(containerId)) return;
    void this.#commandChannel(containerId, user)
      .then((channel) => tags.forEach((tag) => channel?.kill(tag)))
      .catch(() => undefined);
  }

  /**
   * /run/matrx and its two shared folders, sticky like /tmp, and the compiled channel in root's
   * bin/ (no user can replace what root's channel runs), made as root by the engine.
   */
  async #prepare(containerId: string): Promise<void> {
    const pack = tar.pack();
    const folder = (name: string, mode: number) =>
      pack.entry({ name, type: 'directory', mode, uid: 0, gid: 0 });
    folder('run/', 0o755);
    folder('run/matrx/', 0o755);
    folder('run/matrx/u/', 0o1777);
    folder('run/matrx/p/', 0o1777);
    const compiled = this.options.compiledChannel;
    if (compiled) {
      folder('run/matrx/bin/', 0o755);
      pack.entry({ name: COMPILED_CHANNEL_PATH.slice(1), mode: 0o755, uid: 0, gid: 0 }, compiled);
    }
    pack.finalize();
    await this.options.logged('put_archive', containerId, async () => {
      try {
        const response = await this.docker
          .getContainer(containerId)
          .putArchive(Readable.from(pack), { path: '/' });
        (response as unknown as Readable).resume?.();
      } catch (error) {
        const status = dockerStatus(error);
        // The engine answered, and refused (a read-only file system...): no channel here.
        if (status !== undefined && status !== 404 && status !== 409) {
          throw new ChannelEndedError(`/run/matrx could not be made (engine status ${status})`);
        }
        throw toServiceError(error, `prepare /run/matrx in ${containerId}`);
      }
    });
  }
}

/** 2 to 16 segments, none under 64 KiB unless the bound is: each one costs the sandbox a process. */
export function outputSegments(boundBytes: number): ProcessSegments {
  const keep = Math.min(SEGMENTS_KEPT, Math.max(2, Math.floor(boundBytes / MIN_SEGMENT_BYTES)));
  return { segmentBytes: Math.ceil(boundBytes / keep), keep };
}

function withoutSettled({ settled: _settled, ...process }: ChannelProcess): ProcessInfo {
  return process;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
