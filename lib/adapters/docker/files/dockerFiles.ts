import { randomBytes } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { inMemory, shortBody, type ByteStream, type Bytes } from '../../../domain/bytes.js';
import {
  DOCKER,
  PathError,
  PayloadTooLargeError,
  ServiceError,
  UnavailableError,
  ValidationError,
} from '../../../errors.js';
import type {
  ExecRequest,
  ExecResult,
  FileEntry,
  SandboxFiles,
  SearchMatch,
  SearchQuery,
  SearchResult,
} from '../../../ports.js';
import { dockerStatus, saysNoSuchUser, toServiceError } from '../dockerErrors.js';
import {
  fileCommand,
  parseAnswer,
  parseEntries,
  pathError,
  type ScriptAnswer,
} from './fileScript.js';

/** Where each user's staged files live: /run/matrx/f is root's (0711), f/<uid> the user's (0700). */
const STAGING_ROOT = '/run/matrx';
/**
 * How much of an upload is gathered before it goes on to the engine (a file takes each chunk as
 * it comes), and of the engine's read before it goes on to the caller.
 */
const ENGINE_PIECE_BYTES = 1024 * 1024;
const OPERATION_TIMEOUT_SECONDS = 120;
/** What a listing or a search may print; past it the answer is cut. */
const ANSWER_BYTES = 32 * 1024 * 1024;
/**
 * Files up to this size go through the user's channel as base64 (one command, a few forks), the
 * rest through the engine's archive calls, whose fixed cost (a mount of the container's file
 * system by the engine, 100 to 200 ms here) is only worth it for large files.
 */
export const SMALL_FILE_BYTES = 256 * 1024;
/** The answer to a `get`: a status, then base64 of one byte more than the bound, or a path. */
const SMALL_ANSWER_BYTES = Math.ceil((SMALL_FILE_BYTES + 1) / 3) * 4 + 8192;

export interface DockerFilesOptions {
  /** A command as `user`, through the sandbox's channel for that user. */
  exec: (containerId: string, request: ExecRequest) => Promise<ExecResult>;
  /** Logs a call to the engine as the runtime logs each of them. */
  logged: <T>(operation: string, containerId: string, run: () => Promise<T>) => Promise<T>;
  /** A new file as `user`, written through the user's channel; undefined where it has none. */
  openUpload: (
    containerId: string,
    user: string,
    path: string,
    mode: number,
  ) => Promise<Writable | undefined>;
  /** A regular file as `user` may read it, read by this side; undefined where it cannot be. */
  openForReading: (
    containerId: string,
    user: string,
    path: string,
  ) => Promise<ByteStream | undefined>;
  /**
   * A staged file renamed into place as `user` with no command run: the target's entry fields, or
   * undefined for the script's `commit`.
   */
  moveIntoPlace: (
    containerId: string,
    user: string,
    staged: string,
    target: string,
  ) => Promise<string[] | undefined>;
}

interface Ids {
  uid: number;
  gid: number;
}

/**
 * Files of a sandbox, as one of its users. Every check and every change of a name is done by the
 * user (a command through the user's channel), so the kernel applies the container's permissions.
 * A small file's bytes go with that command as base64; a larger one's travel through the engine's
 * archive calls, which stream, into or out of the user's staging folder only. Either way a write
 * is made beside or staged (owned by the user), then renamed into place by the user, in one step
 * a reader cannot see half of.
 */
export class DockerFiles implements SandboxFiles {
  /** Per container and user: the ids, once their staging folder is made. */
  readonly #ids = new Map<string, Promise<Ids>>();

  constructor(
    private readonly docker: Docker,
    private readonly options: DockerFilesOptions,
  ) {}

  /** The container is gone: what was kept for it goes too. */
  forget(containerId: string): void {
    for (const key of this.#ids.keys()) {
      if (key.startsWith(`${containerId}/`)) this.#ids.delete(key);
    }
  }

  async read(containerId: string, user: string, path: string, maxBytes: number): Promise<Bytes> {
    const got = await this.#exec(containerId, user, ['get', path, SMALL_FILE_BYTES], {
      maxOutputBytes: SMALL_ANSWER_BYTES,
    });
    if (got.status === 'ok') {
      const bytes = Buffer.from(got.fields[0] ?? '', 'base64');
      if (bytes.length <= Math.min(SMALL_FILE_BYTES, maxBytes)) return bytes;
    } else if (got.status !== 'large') {
      throw pathError(got, path);
    }
    // Large, grown meanwhile, or over maxBytes (the read says so with the size).
    const realPath =
      got.status === 'large'
        ? (got.fields[0] ?? path)
        : ((await this.#run(containerId, user, path, 'check_read', path)).fields[0] ?? path);
    const opened = await this.options.openForReading(containerId, user, realPath);
    if (!opened) return this.#readStaged(containerId, realPath, path, maxBytes);
    if (opened.length > maxBytes) {
      opened.stream.destroy();
      throw tooLarge(path, opened.length, maxBytes);
    }
    return opened;
  }

  async write(
    containerId: string,
    user: string,
    path: string,
    bytes: Bytes,
    mode: number,
  ): Promise<FileEntry> {
    if (bytes.length <= SMALL_FILE_BYTES) {
      const put = await this.#exec(containerId, user, ['put', path, mode.toString(8)], {
        stdin: (await inMemory(bytes)).toString('base64'),
      });
      if (put.status !== 'ok') throw pathError(put, path);
      return this.#entry(put, path);
    }
    const staged = await this.#stage(containerId, user, bytes, mode);
    // The script's commit forks a few tools, tens of milliseconds here: the channel's rename
    // serves whenever nothing needs the script's care. A channel that ended meanwhile (the
    // sandbox's 503) leaves it to the script too, which runs wherever commands run then.
    const placed = await this.options
      .moveIntoPlace(containerId, user, staged, path)
      .catch((error: unknown) => {
        if (error instanceof UnavailableError) return undefined;
        throw error;
      });
    const answer =
      placed !== undefined
        ? { status: 'ok', fields: placed }
        : await this.#run(containerId, user, path, 'commit', staged, path, mode.toString(8));
    return this.#entry(answer, path);
  }

  async stat(containerId: string, user: string, path: string): Promise<FileEntry> {
    return this.#entry(await this.#run(containerId, user, path, 'stat', path), path);
  }

  async list(containerId: string, user: string, path: string, depth: number): Promise<FileEntry[]> {
    return parseEntries((await this.#run(containerId, user, path, 'list', path, depth)).fields);
  }

  async remove(containerId: string, user: string, path: string, recursive: boolean) {
    await this.#run(containerId, user, path, 'delete', path, recursive ? 1 : 0);
  }

  async makeDir(containerId: string, user: string, path: string): Promise<FileEntry> {
    return this.#entry(await this.#run(containerId, user, path, 'mkdir', path), path);
  }

  async move(containerId: string, user: string, from: string, to: string, overwrite: boolean) {
    const answer = await this.#exec(containerId, user, ['move', from, to, overwrite ? 1 : 0]);
    // Exists is about `to`; anything else about `from` (missing) or the move itself.
    if (answer.status !== 'ok') throw pathError(answer, answer.status === 'exists' ? to : from);
    return this.#entry(answer, to);
  }

  async search(containerId: string, user: string, query: SearchQuery): Promise<SearchResult> {
    const answer = await this.#exec(containerId, user, [
      'search',
      query.path,
      query.glob ?? '',
      query.ignoreCase ? 1 : 0,
      query.maxResults,
      query.pattern,
    ]);
    if (answer.status === 'invalid') {
      const why = answer.fields[0] ?? 'not a valid regular expression';
      throw new ValidationError([{ loc: ['body', 'pattern'], msg: why, type: 'value_error' }]);
    }
    if (answer.status !== 'ok') throw pathError(answer, query.path);
    const [engine = '', ...rest] = answer.fields;
    const matches = parseMatches(rest.join('\0'));
    return {
      engine,
      matches: matches.slice(0, query.maxResults),
      truncated: matches.length > query.maxResults,
    };
  }

  async readArchive(containerId: string, user: string, path: string, maxBytes: number) {
    const { uid } = await this.#idsOf(containerId, user);
    const staged = `${STAGING_ROOT}/f/${uid}/${randomBytes(12).toString('hex')}.tar`;
    await this.#run(containerId, user, path, 'pack', path, staged);
    const removeStaged = () => {
      void this.#exec(containerId, user, ['remove', staged]).catch(() => undefined);
    };
    try {
      const archive = await this.#readStaged(containerId, staged, path, maxBytes);
      archive.stream.once('close', removeStaged);
      return archive;
    } catch (error) {
      removeStaged();
      throw error;
    }
  }

  async writeArchive(containerId: string, user: string, path: string, tarBytes: Buffer) {
    const staged = await this.#stage(containerId, user, tarBytes, 0o600);
    await this.#run(containerId, user, path, 'unpack', staged, path);
  }

  /**
   * Puts the bytes into the user's staging folder as a file of the user's; its path. A stream
   * goes through the user's channel as it comes (to the engine where the sandbox has none); one
   * that ends short (or a sandbox or an engine that fails) leaves nothing.
   */
  async #stage(containerId: string, user: string, bytes: Bytes, mode: number): Promise<string> {
    const ids = await this.#idsOf(containerId, user);
    const name = randomBytes(12).toString('hex');
    const staged = `${STAGING_ROOT}/f/${ids.uid}/${name}`;
    if (!Buffer.isBuffer(bytes) && (await this.#upload(containerId, user, staged, mode, bytes))) {
      return staged;
    }
    const pack = tar.pack();
    stagingFolders(pack, ids);
    const header = { name: `f/${ids.uid}/${name}`, mode, uid: ids.uid, gid: ids.gid };
    if (Buffer.isBuffer(bytes)) {
      pack.entry(header, bytes);
      pack.finalize();
      await this.#putArchive(containerId, pack);
      return staged;
    }
    const upload = new AbortController();
    const entry = pack.entry({ ...header, size: bytes.length });
    // A failure of either is the pour's or the put's, and answered as theirs; unheard, an error
    // event would end the process.
    entry.on('error', () => undefined);
    pack.on('error', () => undefined);
    const poured = pour(bytes, entry, ENGINE_PIECE_BYTES).then(
      () => pack.finalize(),
      (error: unknown) => {
        upload.abort();
        throw error;
      },
    );
    const put = this.#putArchive(containerId, pack, upload.signal).catch((error: unknown) => {
      entry.destroy();
      throw error;
    });
    const [pouring, putting] = await Promise.allSettled([poured, put]);
    const failure = pouring.status === 'rejected' ? pouring : putting;
    if (failure.status === 'rejected') {
      // Part of it may be there; staged files are the user's, so the user removes it.
      void this.#exec(containerId, user, ['remove', staged]).catch(() => undefined);
      throw failure.reason;
    }
    return staged;
  }

  /**
   * Pours the stream into a new file through the user's channel (no engine on the way, nor a
   * tar); false where the sandbox has no channel for it. What a failure left is removed.
   */
  async #upload(containerId: string, user: string, path: string, mode: number, bytes: ByteStream) {
    const sink = await this.options.openUpload(containerId, user, path, mode);
    if (!sink) return false;
    sink.on('error', () => undefined);
    const [pouring, writing] = await Promise.allSettled([pour(bytes, sink, 0), finished(sink)]);
    if (pouring.status === 'rejected' || writing.status === 'rejected') {
      void this.#exec(containerId, user, ['remove', path]).catch(() => undefined);
      if (pouring.status === 'rejected') throw pouring.reason;
      throw writeFailure(writing.status === 'rejected' ? writing.reason : undefined, path);
    }
    return true;
  }

  #idsOf(containerId: string, user: string): Promise<Ids> {
    const key = `${containerId}/${user}`;
    let ids = this.#ids.get(key);
    if (!ids) {
      ids = this.#lookUpIds(containerId, user);
      this.#ids.set(key, ids);
      ids.catch(() => this.#ids.delete(key));
    }
    return ids;
  }

  async #lookUpIds(containerId: string, user: string): Promise<Ids> {
    const result = await this.options.exec(containerId, {
      command: 'id -u; id -g',
      user,
      keepCwd: true,
      timeoutSeconds: OPERATION_TIMEOUT_SECONDS,
      maxOutputBytes: 1024,
    });
    refuseUnknownUser(result, user);
    const [uid, gid] = result.stdout.trim().split('\n').map(Number);
    if (result.exitCode !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
      throw new UnavailableError(
        DOCKER,
        `The sandbox could not tell the ids of ${user}: ${result.stderr.slice(0, 200)}`,
      );
    }
    const ids = { uid: uid as number, gid: gid as number };
    const pack = tar.pack();
    stagingFolders(pack, ids);
    pack.finalize();
    await this.#putArchive(containerId, pack);
    return ids;
  }

  async #putArchive(containerId: string, pack: tar.Pack, signal?: AbortSignal): Promise<void> {
    await this.options.logged('put_archive', containerId, async () => {
      try {
        const response = await this.docker
          .getContainer(containerId)
          .putArchive(Readable.from(pack), { path: STAGING_ROOT, abortSignal: signal });
        (response as unknown as Readable).resume?.();
      } catch (error) {
        throw toServiceError(error, `stage a file in container ${containerId}`);
      }
    });
  }

  /** One regular file as the engine streams it; `shownPath` is the caller's name for it. */
  async #readStaged(
    containerId: string,
    path: string,
    shownPath: string,
    maxBytes: number,
  ): Promise<ByteStream> {
    const stream = await this.options.logged('get_archive', containerId, async () => {
      try {
        return (await this.docker.getContainer(containerId).getArchive({ path })) as Readable;
      } catch (error) {
        // Gone between the check and the read.
        if (dockerStatus(error) === 404)
          throw pathError({ status: 'missing', fields: [] }, shownPath);
        throw toServiceError(error, `read ${path} of container ${containerId}`);
      }
    });
    return firstFileOf(stream, shownPath, maxBytes);
  }

  /** Runs an operation as the user; any status but ok is the error it means for `path`. */
  async #run(containerId: string, user: string, path: string, ...args: (string | number)[]) {
    const answer = await this.#exec(containerId, user, args);
    if (answer.status !== 'ok') throw pathError(answer, path);
    return answer;
  }

  /** One operation of the script (its name, then its arguments) as the user. */
  async #exec(
    containerId: string,
    user: string,
    [operation = '', ...args]: (string | number)[],
    { stdin, maxOutputBytes = ANSWER_BYTES }: { stdin?: string; maxOutputBytes?: number } = {},
  ): Promise<ScriptAnswer> {
    const result = await this.options.exec(containerId, {
      command: fileCommand(String(operation), ...args),
      user,
      keepCwd: true,
      timeoutSeconds: OPERATION_TIMEOUT_SECONDS,
      maxOutputBytes,
      ...(stdin !== undefined && { stdin }),
    });
    refuseUnknownUser(result, user);
    if (result.timedOut) {
      throw new UnavailableError(
        DOCKER,
        `The sandbox did not finish the file operation ${operation} within ${OPERATION_TIMEOUT_SECONDS} s`,
      );
    }
    return parseAnswer(result.stdout);
  }

  #entry(answer: ScriptAnswer, path: string): FileEntry {
    const [entry] = parseEntries(answer.fields);
    if (!entry) throw pathError({ status: 'missing', fields: [] }, path);
    return entry;
  }
}

/** The engine's words for a user the container's passwd does not have: the caller's mistake. */
function refuseUnknownUser(result: { exitCode: number; stdout: string }, user: string): void {
  if (result.exitCode === 126 && saysNoSuchUser(result.stdout, user)) {
    throw new ValidationError([
      { loc: ['user'], msg: `no user ${user} in the sandbox`, type: 'value_error' },
    ]);
  }
}

/** The file's own failure (a full disk...) as the sandbox's; ours pass as they are. */
function writeFailure(error: unknown, path: string): Error {
  if (error instanceof ServiceError) return error;
  const why = error instanceof Error ? error.message : String(error);
  return new UnavailableError(DOCKER, `The sandbox could not write ${path}: ${why}`, {
    cause: error,
  });
}

function tooLarge(path: string, size: number, maxBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`${path} is ${size} bytes, over the limit of ${maxBytes}`);
}

function stagingFolders(pack: tar.Pack, ids: Ids): void {
  pack.entry({ name: 'f/', type: 'directory', mode: 0o711, uid: 0, gid: 0 });
  pack.entry({ name: `f/${ids.uid}/`, type: 'directory', mode: 0o700, uid: ids.uid, gid: ids.gid });
}

/**
 * The first entry of a tar stream, a regular file of at most maxBytes, as a stream of its bytes:
 * known (type and size) before a byte of it is read. Destroying it ends the engine's stream too.
 */
function firstFileOf(stream: Readable, path: string, maxBytes: number): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const extract = tar.extract();
    let settled = false;
    const fail = (error: Error) => {
      stream.destroy();
      extract.destroy();
      if (!settled) reject(error);
      settled = true;
    };
    extract.on('entry', (header, body, next) => {
      if (settled) {
        body.resume();
        next();
        return;
      }
      if (header.type !== 'file') {
        fail(new PathError(409, `Not a regular file: ${path}`));
        return;
      }
      const size = header.size ?? 0;
      if (size > maxBytes) {
        fail(tooLarge(path, size, maxBytes));
        return;
      }
      settled = true;
      const bytes = inPieces(body);
      let ended = false;
      body.on('end', () => {
        ended = true;
        next();
      });
      bytes.once('close', () => {
        if (!ended) fail(new Error('the reader went away'));
      });
      resolve({ stream: bytes, length: size });
    });
    extract.on('finish', () => fail(new PathError(404, `No such file or directory: ${path}`)));
    extract.on('error', fail);
    stream.on('error', fail);
    stream.pipe(extract);
  });
}

/**
 * A file entry's bytes as a Node stream of bytes (what the HTTP server sends as it is), in pieces
 * of up to ENGINE_PIECE_BYTES: the engine gives them in 32 KiB ones, and each is a write of the
 * response otherwise.
 */
function inPieces(body: EntrySource): Readable {
  const held: Buffer[] = [];
  let heldBytes = 0;
  let ended = false;
  const flush = () => {
    const piece = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, heldBytes);
    held.length = 0;
    heldBytes = 0;
    return bytes.push(piece);
  };
  const bytes = new Readable({
    read: () => body.resume(),
    destroy: (error, callback) => {
      body.removeAllListeners('data');
      callback(error);
    },
  });
  body.on('data', (data) => {
    // A file entry's data are Buffers (tar-stream's, of the engine's bytes).
    const chunk = data as Buffer;
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes >= ENGINE_PIECE_BYTES && !flush()) body.pause();
  });
  body.once('end', () => {
    ended = true;
    if (heldBytes > 0) flush();
    bytes.push(null);
  });
  body.once('error', (error) => bytes.destroy(error as Error));
  body.once('close', () => {
    if (!ended) bytes.destroy(new Error('the engine stopped sending the file'));
  });
  return bytes;
}

/** A tar entry's bytes, as tar-stream gives them (a streamx Readable). */
interface EntrySource {
  on(event: 'data', listener: (chunk: unknown) => void): unknown;
  once(event: 'end' | 'close', listener: () => void): unknown;
  once(event: 'error', listener: (error: unknown) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  removeAllListeners(event: 'data'): unknown;
}

/** What pour writes into: a tar entry, as tar-stream makes it (a streamx Writable), or a file. */
interface EntrySink {
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  end(data?: unknown): unknown;
  destroy(error?: Error): void;
  once(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * Writes a stream into a tar entry or a file of its length, in pieces of at least `pieceBytes`;
 * a stream that ends short is refused. The stream is never destroyed (it is a request's, whose
 * socket still has an answer to carry): when the entry fails, what is left of it is left unread.
 */
function pour(bytes: ByteStream, entry: EntrySink, pieceBytes: number): Promise<void> {
  const { stream, length } = bytes;
  return new Promise((resolve, reject) => {
    let written = 0;
    let done = false;
    const held: Buffer[] = [];
    let heldBytes = 0;
    // The engine takes a large upload faster in large pieces than in the socket's 64 KiB ones; a
    // file (or the channel) gathers what comes while it writes, with no copy.
    const pass = (): boolean => {
      const piece = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, heldBytes);
      held.length = 0;
      heldBytes = 0;
      return entry.write(piece);
    };
    const stop = (error?: Error) => {
      if (done) return;
      done = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onShort);
      stream.off('close', onShort);
      if (!error) {
        if (heldBytes > 0) pass();
        entry.end();
        resolve();
        return;
      }
      entry.destroy(error);
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      written += chunk.length;
      if (written > length) return stop(new Error(`the body is longer than its ${length} bytes`));
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes >= pieceBytes && !pass()) {
        stream.pause();
        entry.once('drain', () => stream.resume());
      }
    };
    const onEnd = () => stop(written === length ? undefined : shortBody(written, length));
    const onShort = () => stop(shortBody(written, length));
    entry.once('close', () => stop(new Error('the engine stopped reading the file')));
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onShort);
    stream.once('close', onShort);
  });
}

/** Lines of `path NUL line:text`, as grep -Z -n -H and rg --null -n print them. */
function parseMatches(output: string): SearchMatch[] {
  const matches: SearchMatch[] = [];
  for (const record of output.split('\n')) {
    const nul = record.indexOf('\0');
    if (nul < 0) continue;
    const rest = record.slice(nul + 1);
    const colon = rest.indexOf(':');
    if (colon < 0) continue;
    matches.push({
      path: record.slice(0, nul),
      line: Number(rest.slice(0, colon)),
      text: rest.slice(colon + 1),
    });
  }
  return matches;
}
