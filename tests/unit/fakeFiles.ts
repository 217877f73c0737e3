import { PathError } from '../../lib/errors.js';
import type { FileEntry, SandboxFiles, SearchResult } from '../../lib/ports.js';

/** Regular files in memory, per container: what the file service's unit tests need. */
export class FakeFiles implements SandboxFiles {
  readonly files = new Map<string, { bytes: Buffer; mode: number }>();
  readonly calls: string[] = [];

  async read(containerId: string, _user: string, path: string): Promise<Buffer> {
    this.calls.push(`read ${path}`);
    return this.#file(containerId, path).bytes;
  }

  async write(containerId: string, _user: string, path: string, bytes: Buffer, mode: number) {
    this.calls.push(`write ${path} ${mode.toString(8)}`);
    this.files.set(`${containerId}:${path}`, { bytes: Buffer.from(bytes), mode });
    return this.stat(containerId, _user, path);
  }

  async stat(containerId: string, _user: string, path: string): Promise<FileEntry> {
    const file = this.#file(containerId, path);
    return {
      path,
      name: path.slice(path.lastIndexOf('/') + 1),
      type: 'file',
      size: file.bytes.length,
      mode: file.mode.toString(8).padStart(4, '0'),
      modifiedAt: new Date(0),
    };
  }

  async list(): Promise<FileEntry[]> {
    return [];
  }

  async remove(containerId: string, _user: string, path: string): Promise<void> {
    this.files.delete(`${containerId}:${path}`);
  }

  makeDir(containerId: string, user: string, path: string): Promise<FileEntry> {
    return this.stat(containerId, user, path);
  }

  move(containerId: string, user: string, _from: string, to: string): Promise<FileEntry> {
    return this.stat(containerId, user, to);
  }

  async search(): Promise<SearchResult> {
    return { matches: [], truncated: false, engine: 'fake' };
  }

  async readArchive(): Promise<Buffer> {
    return Buffer.alloc(0);
  }

  async writeArchive(): Promise<void> {}

  #file(containerId: string, path: string) {
    const file = this.files.get(`${containerId}:${path}`);
    if (!file) throw new PathError(404, `No such file or directory: ${path}`);
    return file;
  }
}
