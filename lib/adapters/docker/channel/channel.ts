import { randomBytes } from 'node:crypto';
import type { Duplex, Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import { ConflictError, DOCKER, UnavailableError } from '../../../errors.js';
import type {
  ExecRequest,
  ExecResult,
  ProcessInfo,
  ProcessSignal,
  ProcessStart,
  ProcessStatus,
} from '../../../ports.js';
import { saysNoSuchUser, toServiceError } from '../dockerErrors.js';
import { ENTRY_FIELDS } from '../files/fileScript.js';
import { ByteReader } from './byteReader.js';
import { openDirectFile, openDirectPipes, type DirectPipes } from './directPipes.js';
import { chunkSink } from './sinks.js';

const TIMEOUT_EXIT_CODE = 124;
/** How long a killed command may take to report its end before the call answers anyway. */
const DRAIN_AFTER_KILL_MS = 2000;
const HELLO_TIMEOUT_MS = 10_000;
/** How often, and how far apart, the exec is asked for its pid before the channel goes without. */
const PID_ATTEMPTS = 20;
const PID_RETRY_MS = 25;
/**
 * Every answer is written at once (long waits happen on this side), so one that has not come in
 * this long means the stream lost its place: the channel is ended, and the next call starts a new
 * one, rather than every later request waiting behind it. Under the HTTP timeout (30 s).
 */
const ANSWER_TIMEOUT_MS = 20_000;
/** What both channels (compiled and script) greet with; one build's service and channels agree. */
const PROTOCOL = '3';

/** Where a command starts: the directory, and whether the caller chose it. */
export interface StartDir {
  cwd: string;
  /** True when it is the sandbox's last cwd rather than the caller's: gone, it is replaced. */
  implicit: boolean;
  /** Where the command ends is not recorded: it does not move the sandbox's cwd. */
  kept?: boolean;
}

/** The start's field of a request: 0 explicit, 1 implicit, 2 implicit and not recorded. */
export function startField(start: StartDir): 0 | 1 | 2 {
  if (!start.implicit) return 0;
  return start.kept ? 2 : 1;
}

export interface ProcessSegments {
  /** Bytes per output segment, and how many segments are kept per stream. */
  segmentBytes: number;
  keep: number;
}

export interface StreamChunk {
  /** Where the bytes start (later than asked when older bytes are gone). */
  offset: number;
  bytes: Buffer;
}

/** A process as the channel reports it, and whether nothing it started is left. */
export interface ChannelProcess extends ProcessInfo {
  settled: boolean;
}

/**
 * A file the channel opened as its user, and kept open under an id until closed; `local` is this
 * side's own descriptor for it, where this side could open it (the channel's copy is then closed).
 */
export type OpenedFile = { refused: string } | { size: number; local: number | undefined };
/** A file opened for this side to read: this side's descriptor, or why not. */
export type ReadableFile = { refused: string } | { size: number; local: number };

export type StdinOutcome = ChannelProcess | 'missing' | 'ended' | 'closed' | 'full';

type Field = string | number | Buffer;

/**
 * One long-lived exec in a sandbox as one user, running the compiled command channel
 * (sandbox-image/exec-channel.c: it forks each command, so a command costs a fork in the container
 * instead of an engine exec) or the script's process channel (sandbox-image/channel.sh: background
 * processes). Answers come in the order of the requests; a command's end comes as an event.
 */
export class Channel {
  readonly #reader = new ByteReader();
  readonly #events = new ByteReader();
  #answers: Promise<unknown> = Promise.resolve();
  readonly #finished = new Map<number, (result: ExecResult | undefined) => void>();
  /** The tag of the command in each busy slot. */
  readonly #busySlots = new Map<number, string>();
  #endReason: string | undefined;
  #lastComplaint = '';
  #stalled = false;
  readonly ended: Promise<string>;

  /** Where requests go: the exec's stdin, or the channel's own pipe once it is open. */
  #requests: Writable;
  #direct: DirectPipes | undefined;
  /** The channel's process as this side sees it, once its pipes are open (its files open so too). */
  #pid: number | undefined;
  #end: (why: string) => void = () => undefined;

  private constructor(
    private readonly stream: Duplex,
    readonly user: string,
  ) {
    this.#requests = stream;
    this.ended = new Promise((resolve) => {
      this.#end = (why: string) => {
        if (this.#endReason !== undefined) return;
        this.#endReason = this.#lastComplaint || why;
        this.#reader.end(new ChannelEndedError(this.#endReason));
        this.#events.end(new ChannelEndedError(this.#endReason));
        for (const finish of this.#finished.values()) finish(undefined);
        this.close();
        resolve(this.#endReason);
      };
    });
    this.#endWith(stream);
  }

  #endWith(stream: Readable | Writable): void {
    stream.once('end', () => this.#end('the channel ended'));
    stream.once('close', () => this.#end('the channel ended'));
    stream.once('error', (error: Error) => this.#end(`the channel failed: ${error.message}`));
  }

  /** From now on requests and answers take the channel's own pipes. */
  #takeDirect({ pid, pipes }: { pid: number; pipes: DirectPipes }): void {
    this.#direct = pipes;
    this.#pid = pid;
    this.#requests = pipes.requests;
    pipes.answers.on('data', (chunk: Buffer) => this.#reader.push(chunk));
    pipes.events.on('data', (chunk: Buffer) => this.#events.push(chunk));
    for (const pipe of [pipes.requests, pipes.answers, pipes.events]) this.#endWith(pipe);
  }

  /** True when requests skip the engine (the channel's pipes, opened through /proc). */
  get direct(): boolean {
    return this.#direct !== undefined;
  }

  /**
   * Starts the channel (`program`, then the user's name) and waits for its greeting; it says
   * where its last command ended.
   */
  static async open(
    docker: Docker,
    containerId: string,
    user: string,
    program: string[],
    options: {
      /** The program offers its own pipes after its greeting (the compiled channel does). */
      offersPipes?: boolean;
      /** Opens the offered pipes of the channel's process, when this side can. */
      openPipes?: (pid: number, offer: string) => DirectPipes | undefined;
    } = {},
  ): Promise<{ channel: Channel; storedCwd: string }> {
    let stream: Duplex;
    let exec: Docker.Exec;
    try {
      exec = await docker.getContainer(containerId).exec({
        Cmd: [...program, user],
        User: user,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
      });
      stream = await exec.start({ hijack: true, stdin: true });
    } catch (error) {
      throw toServiceError(error, `start the command channel of container ${containerId}`);
    }
    const channel = new Channel(stream, user);
    docker.modem.demuxStream(
      stream,
      chunkSink((chunk) => channel.#reader.push(chunk)),
      chunkSink((chunk) => channel.#events.push(chunk)),
    );
    void channel.#readEvents();
    const hello = channel.#answer(async (reader) => {
      const [name, protocol, storedCwd] = [
        await reader.text(),
        await reader.text(),
        await reader.text(),
      ];
      if (name !== 'matrx-channel' || protocol !== PROTOCOL) {
        throw new ChannelEndedError(`unexpected greeting ${JSON.stringify(name)} ${protocol}`);
      }
      return { storedCwd, offer: options.offersPipes ? await reader.text() : '' };
    });
    let timer: NodeJS.Timeout | undefined;
    const tooLate = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ChannelEndedError('no greeting within 10 s')),
        HELLO_TIMEOUT_MS,
      );
    });
    try {
      const { storedCwd, offer } = await Promise.race([hello, tooLate]);
      const direct = offer
        ? await pipesOf(exec, offer, options.openPipes ?? openDirectPipes)
        : undefined;
      if (direct) channel.#takeDirect(direct);
      return { channel, storedCwd };
    } catch (error) {
      channel.close();
      // The engine says so on the exec's output, and ends it, when the image has no such user.
      const said = channel.#reader.unread() + channel.#events.unread();
      if (saysNoSuchUser(said, user)) throw new NoSuchUserError(user);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** It was ended for an answer that never came (a fault of the channel's, worth a warning). */
  get stalled(): boolean {
    return this.#stalled;
  }

  get alive(): boolean {
    return this.#endReason === undefined;
  }

  /** The tags of the commands running now (what a sweep finds them by). */
  get runningTags(): string[] {
    return [...this.#busySlots.values()];
  }

  /** Kills the whole tree of a command, wherever it was started from. */
  kill(tag: string): void {
    this.#send(['K', tag, 'KILL']);
  }

  close(): void {
    this.stream.destroy();
    if (this.#direct) for (const pipe of Object.values(this.#direct)) pipe.destroy();
  }

  async exec(request: ExecRequest, start: StartDir, backstopSeconds: number): Promise<ExecResult> {
    const tag = randomBytes(8).toString('hex');
    const slot = this.#takeSlot(tag);
    let finish: (result: ExecResult | undefined) => void = () => undefined;
    const finished = new Promise<ExecResult | undefined>((resolve) => (finish = resolve));
    this.#finished.set(slot, finish);
    try {
      this.#send([
        'X',
        slot,
        tag,
        start.cwd,
        startField(start),
        backstopSeconds,
        request.maxOutputBytes,
        ...envFields(request.env),
        ...pieceFields(request.stdin),
        request.command,
      ]);
    } catch (error) {
      this.#finished.delete(slot);
      this.#busySlots.delete(slot);
      throw error;
    }
    let result = await within(finished, request.timeoutSeconds * 1000);
    if (result === 'late') {
      this.kill(tag);
      result = await within(finished, DRAIN_AFTER_KILL_MS);
      // Still running: its slot stays taken until it ends, its output unread. A channel that
      // cannot answer either (stopped from inside) is ended by the answer's timeout.
      if (result === 'late') {
        this.ping().catch(() => undefined);
        return { ...emptyResult(), exitCode: TIMEOUT_EXIT_CODE, timedOut: true };
      }
      if (result) return { ...result, exitCode: TIMEOUT_EXIT_CODE, timedOut: true };
    }
    if (!result) {
      throw new UnavailableError(
        DOCKER,
        `The sandbox's command channel ended while the command ran; what became of it is unknown (${this.#endReason ?? 'no reason given'})`,
      );
    }
    return result;
  }

  async startProcess(start: ProcessStart, dir: StartDir, segments: ProcessSegments) {
    const answer = await this.#request(
      [
        'P',
        start.processId,
        dir.cwd,
        dir.implicit ? 1 : 0,
        start.timeoutSeconds ?? '',
        segments.segmentBytes,
        segments.keep,
        ...envFields(start.env),
        start.command,
      ],
      async (reader) => ((await reader.text()) === 'ok' ? readProcess(reader) : null),
    );
    if (!answer) throw new ConflictError(`Process ${start.processId} exists already`);
    return answer;
  }

  listProcesses(): Promise<ChannelProcess[]> {
    return this.#request(['L'], async (reader) => {
      await expectOk(reader);
      const count = await reader.number();
      const processes: ChannelProcess[] = [];
      for (let index = 0; index < count; index += 1) processes.push(await readProcess(reader));
      return processes;
    });
  }

  getProcess(processId: string): Promise<ChannelProcess | null> {
    return this.#request(['G', processId], async (reader) =>
      (await reader.text()) === 'ok' ? readProcess(reader) : null,
    );
  }

  readOutput(
    processId: string,
    offsets: { stdout: number; stderr: number },
    maxBytes: number,
  ): Promise<{ process: ChannelProcess; stdout: StreamChunk; stderr: StreamChunk } | null> {
    return this.#request(
      ['O', processId, offsets.stdout, offsets.stderr, maxBytes],
      async (reader) => {
        if ((await reader.text()) !== 'ok') return null;
        const process = await readProcess(reader);
        const stdout = await readChunk(reader);
        const stderr = await readChunk(reader);
        return { process, stdout, stderr };
      },
    );
  }

  writeStdin(processId: string, data: Buffer, eof: boolean): Promise<StdinOutcome> {
    return this.#request(['I', processId, eof ? 1 : 0, data.length, data], async (reader) => {
      const outcome = await reader.text();
      if (outcome === 'ok') return readProcess(reader);
      if (outcome === 'missing' || outcome === 'ended' || outcome === 'closed') return outcome;
      return 'full';
    });
  }

  terminate(processId: string, signal: ProcessSignal): Promise<ChannelProcess | null> {
    return this.#request(['T', processId, signal], async (reader) =>
      (await reader.text()) === 'ok' ? readProcess(reader) : null,
    );
  }

  /**
   * Opens a new file at `path` as the channel's user for an upload named `id` (never one that
   * exists, nor through a symlink).
   */
  openUpload(id: string, path: string, mode: number): Promise<OpenedFile> {
    return this.#openFile(['O', id, path, mode.toString(8)], id, 'write');
  }

  /**
   * Opens the regular file at `path` as the channel's user for this side to read (refused where
   * this side cannot open the channel's files).
   */
  async openForReading(id: string, path: string): Promise<ReadableFile> {
    const opened = await this.#openFile(['R', id, path], id, 'read');
    if ('refused' in opened) return opened;
    if (opened.local !== undefined) return { size: opened.size, local: opened.local };
    await this.closeFile(id);
    return { refused: "this side cannot open the channel's files" };
  }

  async #openFile(request: Field[], id: string, purpose: 'read' | 'write'): Promise<OpenedFile> {
    const answer = await this.#request(request, async (reader) => {
      const status = await reader.text();
      if (status !== 'ok') return { refused: status };
      const [fd, inode, size] = [await reader.text(), await reader.text(), await reader.text()];
      return { fd: Number(fd), inode: BigInt(inode), size: Number(size) };
    });
    if (answer.refused !== undefined) return { refused: answer.refused };
    const local = this.#pid === undefined ? undefined : openDirectFile(this.#pid, answer, purpose);
    if (local !== undefined) await this.closeFile(id);
    return { size: answer.size, local };
  }

  /** Writes a piece of an open upload, given in parts; resolves once the channel may be sent more. */
  async uploadPiece(id: string, parts: Buffer[]): Promise<void> {
    this.#ensureAlive('before the upload');
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    // The header, then each part as it is: one buffer would copy them all.
    this.#requests.write(encode(['D', id, length]));
    let room = true;
    for (const part of parts) room = this.#requests.write(part);
    const requests = this.#requests;
    if (room || requests.destroyed) return;
    await new Promise<void>((resolve) => {
      // A channel that ends closes its requests pipe: no drain comes then.
      const done = () => {
        requests.off('drain', done);
        requests.off('close', done);
        resolve();
      };
      requests.once('drain', done);
      requests.once('close', done);
    });
  }

  /** Closes an opened file; undefined when every piece was written, else the first failure. */
  async closeFile(id: string): Promise<string | undefined> {
    const status = await this.#request(['C', id], (reader) => reader.text());
    return status === 'ok' ? undefined : status;
  }

  /**
   * Puts the written file at `staged` in place at `target` with one rename, as the channel's user;
   * the target's entry (files.sh's fields), or undefined where the file script's commit must do
   * it (a folder to make, another file system, a refusal to word), the staged file untouched.
   */
  async moveIntoPlace(staged: string, target: string): Promise<string[] | undefined> {
    return this.#request(['M', staged, target], async (reader) => {
      if ((await reader.text()) !== 'ok') return undefined;
      const entry: string[] = [];
      for (let field = 0; field < ENTRY_FIELDS; field += 1) entry.push(await reader.text());
      return entry;
    });
  }

  /** Kills every process of the channel's user in the sandbox but the channel (it is ending). */
  async killEverything(): Promise<void> {
    await this.#request(['E'], expectOk);
  }

  /** Answers once the channel reads requests. */
  async ping(): Promise<void> {
    await this.#request(['N'], expectOk);
  }

  #takeSlot(tag: string): number {
    let slot = 0;
    while (this.#busySlots.has(slot)) slot += 1;
    this.#busySlots.set(slot, tag);
    return slot;
  }

  #ensureAlive(context: string): void {
    if (this.#endReason !== undefined) {
      throw new UnavailableError(
        DOCKER,
        `The sandbox's command channel ended ${context} (${this.#endReason})`,
      );
    }
  }

  #send(fields: Field[]): void {
    this.#ensureAlive('before the request');
    this.#requests.write(encode(fields));
  }

  /** Sends a request and reads its answer once the answers before it are read. */
  #request<T>(fields: Field[], read: (reader: ByteReader) => Promise<T>): Promise<T> {
    this.#send(fields);
    return this.#answer(read).catch((error: unknown) => {
      if (error instanceof ChannelEndedError) this.#ensureAlive('before it answered');
      throw error;
    });
  }

  #answer<T>(read: (reader: ByteReader) => Promise<T>): Promise<T> {
    const answer = this.#answers.then(() => this.#readInTime(read));
    this.#answers = answer.catch((error: unknown) => {
      // An answer that could not be read leaves the stream at an unknown place: end it.
      if (!(error instanceof ChannelEndedError)) this.close();
    });
    return answer;
  }

  async #readInTime<T>(read: (reader: ByteReader) => Promise<T>): Promise<T> {
    const result = await within(read(this.#reader), ANSWER_TIMEOUT_MS);
    if (result !== 'late') return result;
    this.#stalled = true;
    this.#lastComplaint ||= `it gave no answer within ${ANSWER_TIMEOUT_MS / 1000} s`;
    this.close();
    throw new ChannelEndedError(this.#lastComplaint);
  }

  /** Stderr carries events: a command's end with its result, or why the channel stops. */
  async #readEvents(): Promise<void> {
    try {
      for (;;) {
        const kind = await this.#events.text();
        if (kind === 'E') {
          const slot = await this.#events.number();
          const result = await readResult(this.#events);
          this.#busySlots.delete(slot);
          const finish = this.#finished.get(slot);
          this.#finished.delete(slot);
          finish?.(result);
        } else if (kind === 'F') {
          this.#lastComplaint = await this.#events.text();
        } else {
          throw new ChannelEndedError(`unknown event ${JSON.stringify(kind.slice(0, 80))}`);
        }
      }
    } catch (error) {
      if (!(error instanceof ChannelEndedError) || this.alive) this.close();
    }
  }
}

/**
 * The channel's own pipes, and its pid, when this side can open them; the exec's stdio serves
 * otherwise.
 */
async function pipesOf(
  exec: Docker.Exec,
  offer: string,
  open: (pid: number, offer: string) => DirectPipes | undefined,
): Promise<{ pid: number; pipes: DirectPipes } | undefined> {
  try {
    // The engine records the exec's pid after starting it: a greeting can come first.
    for (let attempt = 0; attempt < PID_ATTEMPTS; attempt++) {
      const { Pid } = await exec.inspect();
      if (Pid > 0) {
        const pipes = open(Pid, offer);
        return pipes && { pid: Pid, pipes };
      }
      await new Promise((resolve) => setTimeout(resolve, PID_RETRY_MS));
    }
  } catch {
    // An exec the engine cannot inspect talks over its stdio.
  }
  return undefined;
}

/** The channel ended, or answered something it should not have. */
export class ChannelEndedError extends Error {}

/** The image has no such user: the request's mistake, not the sandbox's. */
export class NoSuchUserError extends Error {
  constructor(readonly user: string) {
    super(`no user ${user} in the sandbox`);
  }
}

function encode(fields: Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const field of fields) {
    if (Buffer.isBuffer(field)) {
      parts.push(field);
      continue;
    }
    const text = String(field);
    if (text.includes('\0')) throw new ConflictError('A NUL byte cannot be sent to a command');
    parts.push(Buffer.from(text), NUL);
  }
  return Buffer.concat(parts);
}

const NUL = Buffer.from([0]);

function envFields(env: Record<string, string> | undefined): Field[] {
  const entries = Object.entries(env ?? {});
  return [entries.length, ...entries.flat()];
}

export async function within<T>(done: Promise<T>, ms: number): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Text that may hold NULs, as the channel reads it: a count, then the pieces between NULs. */
function pieceFields(text: string | undefined): Field[] {
  if (text === undefined || text === '') return [0];
  const pieces = text.split('\0');
  return [pieces.length, ...pieces];
}

async function readPieces(reader: ByteReader): Promise<Buffer> {
  const count = await reader.number();
  const pieces: Buffer[] = [];
  for (let index = 0; index < count; index += 1) {
    if (index > 0) pieces.push(NUL);
    pieces.push(await reader.field());
  }
  return Buffer.concat(pieces);
}

function emptyResult(): ExecResult {
  return {
    exitCode: 0,
    stdout: '',
    stderr: '',
    stdoutTruncated: false,
    stderrTruncated: false,
    timedOut: false,
    cwd: '',
  };
}

async function expectOk(reader: ByteReader): Promise<void> {
  const status = await reader.text();
  if (status !== 'ok') throw new ChannelEndedError(`channel answered ${status}`);
}

/** An `E` event after its slot: exit code, cwd, the two cut flags, then the two streams. */
async function readResult(reader: ByteReader): Promise<ExecResult> {
  const exitCode = await reader.number();
  const cwd = await reader.text();
  const stdoutTruncated = (await reader.text()) === '1';
  const stderrTruncated = (await reader.text()) === '1';
  const stdout = await readPieces(reader);
  const stderr = await readPieces(reader);
  return {
    exitCode,
    stdout: stdout.toString('utf8'),
    stderr: stderr.toString('utf8'),
    stdoutTruncated,
    stderrTruncated,
    timedOut: false,
    cwd,
  };
}

async function readProcess(reader: ByteReader): Promise<ChannelProcess> {
  const processId = await reader.text();
  const command = await reader.text();
  const user = await reader.text();
  const cwd = await reader.text();
  const startedAt = fromMicroseconds(await reader.text());
  const status = (await reader.text()) as ProcessStatus;
  const exitCode = await reader.text();
  const endedAt = await reader.text();
  const settled = (await reader.text()) === '1';
  return {
    processId,
    command,
    user,
    cwd,
    status,
    exitCode: status === 'running' || exitCode === '' ? null : Number(exitCode),
    startedAt: startedAt ?? new Date(0),
    endedAt: status === 'running' ? null : fromMicroseconds(endedAt),
    settled,
  };
}

async function readChunk(reader: ByteReader): Promise<StreamChunk> {
  const offset = await reader.number();
  const length = await reader.number();
  return { offset, bytes: await reader.bytes(length) };
}

function fromMicroseconds(field: string): Date | null {
  const microseconds = Number(field);
  return field === '' || !Number.isFinite(microseconds) ? null : new Date(microseconds / 1000);
}
