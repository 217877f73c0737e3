import tar from 'tar-stream';
import { Readable } from 'node:stream';
import { inMemory, type Bytes } from '../domain/bytes.js';
import { ConflictError, PayloadTooLargeError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FileEntry, SandboxFiles, SearchQuery, SearchResult } from '../ports.js';
import { inContainer, type CommandableSandbox, type SandboxAccess } from './sandboxAccess.js';
import { sandboxLog } from './sandboxLog.js';

export interface FileServiceSettings {
  /** The largest file (or archive) read, written or edited. */
  maxFileBytes: number;
}

export interface EditRequest {
  path: string;
  oldString: string;
  newString: string;
  replaceAll: boolean;
}

export interface ArchiveWritten {
  path: string;
  /** Regular files in the archive, and their bytes together. */
  files: number;
  bytes: number;
}

/**
 * The files of a sandbox, as one of its users: each request finds the sandbox as a command does
 * (404, this host, 409 unless it takes commands), then reaches its files through the files port,
 * whose path errors (403, 404, 409) are its own, not the container's.
 */
export class FileService {
  constructor(
    private readonly access: SandboxAccess,
    private readonly files: SandboxFiles,
    private readonly settings: FileServiceSettings,
    private readonly logger: Logger,
  ) {}

  /** A large file comes as a stream, which the caller must read or destroy. */
  read(sandboxId: string, user: string, path: string): Promise<Bytes> {
    return this.#on(sandboxId, 'read', (id) =>
      this.files.read(id, user, path, this.settings.maxFileBytes),
    );
  }

  async write(
    sandboxId: string,
    user: string,
    path: string,
    bytes: Bytes,
    mode: number,
  ): Promise<FileEntry> {
    this.#checkSize(bytes.length);
    return this.#on(sandboxId, 'write', (id) => this.files.write(id, user, path, bytes, mode));
  }

  stat(sandboxId: string, user: string, path: string): Promise<FileEntry> {
    return this.#on(sandboxId, 'stat', (id) => this.files.stat(id, user, path));
  }

  /** Sorted by path. */
  async list(sandboxId: string, user: string, path: string, depth: number) {
    const entries = await this.#on(sandboxId, 'list', (id) =>
      this.files.list(id, user, path, depth),
    );
    return entries.sort((a, b) => compareBytes(a.path, b.path));
  }

  remove(sandboxId: string, user: string, path: string, recursive: boolean): Promise<void> {
    return this.#on(sandboxId, 'delete', (id) => this.files.remove(id, user, path, recursive));
  }

  makeDir(sandboxId: string, user: string, path: string): Promise<FileEntry> {
    return this.#on(sandboxId, 'mkdir', (id) => this.files.makeDir(id, user, path));
  }

  move(sandboxId: string, user: string, from: string, to: string, overwrite: boolean) {
    return this.#on(sandboxId, 'move', (id) => this.files.move(id, user, from, to, overwrite));
  }

  /**
   * Replaces `oldString` once (or everywhere with replaceAll), comparing bytes: absent, or found
   * more than once without replaceAll, is a 409 that says which. The file keeps its mode.
   */
  async edit(sandboxId: string, user: string, edit: EditRequest) {
    return this.#on(sandboxId, 'edit', async (id) => {
      const [bytes, entry] = await Promise.all([
        this.files.read(id, user, edit.path, this.settings.maxFileBytes).then(inMemory),
        this.files.stat(id, user, edit.path),
      ]);
      const old = Buffer.from(edit.oldString);
      const found = occurrences(bytes, old);
      if (found.length === 0) {
        throw new ConflictError(`old_string was not found in ${edit.path}`);
      }
      if (found.length > 1 && !edit.replaceAll) {
        throw new ConflictError(
          `old_string was found ${found.length} times in ${edit.path}: make it unique, or set replace_all`,
        );
      }
      const edited = replaceAt(bytes, found, old.length, Buffer.from(edit.newString));
      this.#checkSize(edited.length);
      await this.files.write(id, user, edit.path, edited, parseInt(entry.mode, 8));
      return { path: edit.path, replacements: found.length };
    });
  }

  search(sandboxId: string, user: string, query: SearchQuery): Promise<SearchResult> {
    return this.#on(sandboxId, 'search', (id) => this.files.search(id, user, query));
  }

  readArchive(sandboxId: string, user: string, path: string): Promise<Bytes> {
    return this.#on(sandboxId, 'archive_out', (id) =>
      this.files.readArchive(id, user, path, this.settings.maxFileBytes),
    );
  }

  async writeArchive(
    sandboxId: string,
    user: string,
    path: string,
    body: Bytes,
  ): Promise<ArchiveWritten> {
    this.#checkSize(body.length);
    // Read whole: the archive is checked and counted before anything of it is extracted.
    const tarBytes = await inMemory(body);
    const { files, bytes } = await countRegularFiles(tarBytes);
    await this.#on(sandboxId, 'archive_in', (id) =>
      this.files.writeArchive(id, user, path, tarBytes),
    );
    return { path, files, bytes };
  }

  #checkSize(size: number): void {
    if (size > this.settings.maxFileBytes) {
      throw new PayloadTooLargeError(
        `The body is ${size} bytes, over the limit of ${this.settings.maxFileBytes} (MATRX_MAX_FILE_BYTES)`,
      );
    }
  }

  async #on<T>(
    sandboxId: string,
    operation: string,
    call: (containerId: string) => Promise<T>,
  ): Promise<T> {
    const sandbox: CommandableSandbox = await this.access.getCommandable(sandboxId);
    const result = await inContainer(sandboxId, () => call(sandbox.containerId), {
      ownConflicts: true,
    });
    await this.access.touchActivity(sandbox, new Date());
    sandboxLog(this.logger, sandbox).debug('file operation', { operation });
    return result;
  }
}

/** Byte order of the UTF-8 paths, as `sort` in the C locale gives it. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function occurrences(haystack: Buffer, needle: Buffer): number[] {
  const found: number[] = [];
  for (
    let at = haystack.indexOf(needle);
    at >= 0;
    at = haystack.indexOf(needle, at + needle.length)
  ) {
    found.push(at);
  }
  return found;
}

function replaceAt(bytes: Buffer, at: number[], length: number, replacement: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (const start of at) {
    parts.push(bytes.subarray(from, start), replacement);
    from = start + length;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}

/** The regular files of a tar and their total size; a body that is not a tar is a 422. */
async function countRegularFiles(tarBytes: Buffer): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const extract = tar.extract();
  try {
    for await (const entry of Readable.from([tarBytes]).pipe(extract)) {
      if (entry.header.type === 'file') {
        files += 1;
        bytes += entry.header.size ?? 0;
      }
      entry.resume();
    }
  } catch (error) {
    throw new ValidationError([
      { loc: ['body'], msg: `not a tar archive (${String(error)})`, type: 'value_error' },
    ]);
  }
  return { files, bytes };
}
