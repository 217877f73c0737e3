import { spawn } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { NotFoundError } from './errors.js';
import type { CallOptions, RawBody, Transport } from './http.js';
import type {
  ArchiveResult,
  EditResult,
  FileEntry,
  FileList,
  SearchRequest,
  SearchResult,
} from './types.js';

/** Bytes moved so far, and the whole when it is known. */
export type Progress = (done: number, total: number | undefined) => void;

export interface FileOptions extends CallOptions {
  /** The Linux user the operation runs as (default agent): the container's permissions apply. */
  user?: string;
}

export interface TransferOptions extends FileOptions {
  onProgress?: Progress;
}

/** Files are up to MATRX_MAX_FILE_BYTES (100 MiB by default): minutes on a slow link. */
const TRANSFER_TIMEOUT_MS = 600_000;
const CHUNK_BYTES = 64 * 1024;

/** A sandbox's files, read and written as a user of the sandbox. */
export class Files {
  constructor(
    private readonly transport: Transport,
    readonly sandboxId: string,
  ) {}

  private params() {
    return { sandbox_id: this.sandboxId };
  }

  /** A file's bytes, unchanged. */
  async read(path: string, options: TransferOptions = {}): Promise<Uint8Array> {
    const { user, onProgress, ...call } = options;
    const response = await this.transport.send(
      'readFile',
      { params: this.params(), query: { path, user }, ...call },
      TRANSFER_TIMEOUT_MS,
    );
    return readBody(response, onProgress);
  }

  /** A file as UTF-8 text. */
  async readText(path: string, options: TransferOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.read(path, options));
  }

  /** Writes a file in one step (text as UTF-8), its parents made; `mode` as octal text. */
  write(
    path: string,
    data: string | Uint8Array,
    options: TransferOptions & { mode?: string } = {},
  ): Promise<FileEntry> {
    const { user, mode, onProgress, ...call } = options;
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    return this.transport.json(
      'writeFile',
      {
        params: this.params(),
        query: { path, user, mode },
        rawBody: { raw: counted(bytes, onProgress), contentType: 'application/octet-stream' },
        ...call,
      },
      TRANSFER_TIMEOUT_MS,
    );
  }

  /** What is in a directory, `depth` levels down (1 to 10), sorted by path. */
  list(path: string, options: FileOptions & { depth?: number } = {}): Promise<FileList> {
    const { user, depth, ...call } = options;
    return this.transport.json('listFiles', {
      params: this.params(),
      query: { path, user, depth },
      ...call,
    });
  }

  /** One entry; a symlink is itself, with its target. */
  stat(path: string, options: FileOptions = {}): Promise<FileEntry> {
    const { user, ...call } = options;
    return this.transport.json('statFile', {
      params: this.params(),
      query: { path, user },
      ...call,
    });
  }

  /** Whether the path exists (a broken symlink does). */
  async exists(path: string, options: FileOptions = {}): Promise<boolean> {
    try {
      await this.stat(path, options);
      return true;
    } catch (error) {
      if (error instanceof NotFoundError && !/^Sandbox /.test(error.detail)) return false;
      throw error;
    }
  }

  /** Makes a directory and its parents; one that exists is fine. */
  mkdir(path: string, options: FileOptions = {}): Promise<FileEntry> {
    const { user, ...call } = options;
    return this.transport.json('makeDir', { params: this.params(), body: { path, user }, ...call });
  }

  /** Moves or renames; the parents of `to` are made. A ConflictError when `to` exists. */
  move(
    from: string,
    to: string,
    options: FileOptions & { overwrite?: boolean } = {},
  ): Promise<FileEntry> {
    const { user, overwrite, ...call } = options;
    return this.transport.json('moveFile', {
      params: this.params(),
      body: { from, to, overwrite, user },
      ...call,
    });
  }

  /** Deletes a file, a symlink, or a directory (a non-empty one only with `recursive`). */
  async remove(path: string, options: FileOptions & { recursive?: boolean } = {}): Promise<void> {
    const { user, recursive, ...call } = options;
    await this.transport.json('deleteFile', {
      params: this.params(),
      query: { path, user, recursive },
      ...call,
    });
  }

  /**
   * Replaces `oldString` by `newString` in a file: a ConflictError when it is absent, or found
   * more than once without `replaceAll`.
   */
  edit(
    path: string,
    oldString: string,
    newString: string,
    options: FileOptions & { replaceAll?: boolean } = {},
  ): Promise<EditResult> {
    const { user, replaceAll, ...call } = options;
    return this.transport.json('editFile', {
      params: this.params(),
      body: { path, old_string: oldString, new_string: newString, replace_all: replaceAll, user },
      ...call,
    });
  }

  /** Lines matching a regular expression in the files under `path`. */
  search(
    pattern: string,
    path: string,
    options: FileOptions & Omit<SearchRequest, 'pattern' | 'path' | 'user'> = {},
  ): Promise<SearchResult> {
    const { user, signal, timeoutMs, ...search } = options;
    return this.transport.json('searchFiles', {
      params: this.params(),
      body: { pattern, path, user, ...search },
      signal,
      timeoutMs,
    });
  }

  /** A tar of the directory `path`'s tree, entries named `./...`, as a stream. */
  async downloadArchive(
    path: string,
    options: TransferOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const { user, onProgress, ...call } = options;
    const response = await this.transport.send(
      'readArchive',
      { params: this.params(), query: { path, user }, ...call },
      TRANSFER_TIMEOUT_MS,
    );
    const body = response.body ?? new Response(new Uint8Array()).body;
    return counting(body as ReadableStream<Uint8Array>, onProgress, contentLength(response));
  }

  /** Extracts a tar into the directory `path` (made if missing). */
  uploadArchive(
    path: string,
    tar: Uint8Array | ReadableStream<Uint8Array>,
    options: TransferOptions = {},
  ): Promise<ArchiveResult> {
    const { user, onProgress, ...call } = options;
    const raw = tar instanceof Uint8Array ? counted(tar, onProgress) : counting(tar, onProgress);
    return this.transport.json(
      'writeArchive',
      {
        params: this.params(),
        query: { path, user },
        rawBody: { raw, contentType: 'application/x-tar' },
        ...call,
      },
      TRANSFER_TIMEOUT_MS,
    );
  }

  /** Uploads a local directory's tree into `path` (the machine's `tar` makes the archive). */
  async uploadDir(
    localDir: string,
    path: string,
    options: TransferOptions = {},
  ): Promise<ArchiveResult> {
    if (!(await stat(localDir)).isDirectory()) throw new TypeError(`${localDir}: not a directory`);
    const tar = spawn('tar', ['-C', localDir, '-cf', '-', '.'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = exitOf(tar, 'tar -c');
    const stream = Readable.toWeb(tar.stdout) as ReadableStream<Uint8Array>;
    const [result] = await Promise.all([this.uploadArchive(path, stream, options), exited]);
    return result;
  }

  /** Downloads the directory `path`'s tree into a local directory (made if missing). */
  async downloadDir(path: string, localDir: string, options: TransferOptions = {}) {
    const archive = await this.downloadArchive(path, options);
    await mkdir(localDir, { recursive: true });
    const tar = spawn('tar', ['-C', localDir, '-xf', '-'], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    const exited = exitOf(tar, 'tar -x');
    Readable.fromWeb(archive as Parameters<typeof Readable.fromWeb>[0]).pipe(tar.stdin);
    await exited;
  }
}

/** Bytes as a body; with a progress callback, a stream of chunks that reports as it is read. */
function counted(bytes: Uint8Array, onProgress: Progress | undefined): RawBody['raw'] {
  if (!onProgress) return bytes;
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= bytes.length) {
        controller.close();
        return;
      }
      const chunk = bytes.subarray(sent, sent + CHUNK_BYTES);
      sent += chunk.length;
      controller.enqueue(chunk);
      onProgress(sent, bytes.length);
    },
  });
}

/** The stream, reporting the bytes that went through it. */
function counting(
  stream: ReadableStream<Uint8Array>,
  onProgress: Progress | undefined,
  total?: number,
): ReadableStream<Uint8Array> {
  if (!onProgress) return stream;
  let done = 0;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        done += chunk.length;
        onProgress(done, total);
        controller.enqueue(chunk);
      },
    }),
  );
}

function contentLength(response: Response): number | undefined {
  const length = Number(response.headers.get('content-length') ?? NaN);
  return Number.isFinite(length) ? length : undefined;
}

async function readBody(response: Response, onProgress: Progress | undefined) {
  if (!onProgress || !response.body) return new Uint8Array(await response.arrayBuffer());
  const stream = counting(
    response.body as ReadableStream<Uint8Array>,
    onProgress,
    contentLength(response),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function exitOf(child: ReturnType<typeof spawn>, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${what} exited with ${code}`)),
    );
  });
}
