import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type tar from 'tar-stream';

/**
 * The pieces of a home's trip through a tar stream: the state kept per file (in S3 metadata and in
 * the manifest of what was restored), which files are never saved, and streaming helpers.
 */
/** What a sandbox restored, by path under the home: what its save may delete or skip. */
export type Snapshot = Map<string, FileState>;

/**
 * The snapshot is kept in the container itself, at its root, readable by root only: it lives
 * exactly as long as the files it describes, and survives a restart of the service.
 */
export const MANIFEST_NAME = '.matrx-restored.json';

export interface FileState {
  size: number;
  mtime: number;
  mode: number;
  linkname?: string;
}

/** Never saved: temporary files, Finder litter, Python byte code. */
export function isSkipped(path: string): boolean {
  const name = posix.basename(path);
  return name.endsWith('.tmp') || name === '.DS_Store' || path.split('/').includes('__pycache__');
}

export function metadataOf(state: FileState): Record<string, string> {
  return {
    mode: state.mode.toString(8),
    mtime: String(state.mtime),
    ...(state.linkname !== undefined && { linkname: encodeURIComponent(state.linkname) }),
  };
}

export function stateOf(size: number, metadata: Record<string, string>): FileState {
  const mode = Number.parseInt(metadata.mode ?? '644', 8);
  return {
    size,
    mode: Number.isNaN(mode) ? 0o644 : mode,
    mtime: Number(metadata.mtime ?? 0) || Math.floor(Date.now() / 1000),
    ...(metadata.linkname !== undefined && { linkname: decodeURIComponent(metadata.linkname) }),
  };
}

export const same = (a: FileState | undefined, b: FileState) =>
  a !== undefined &&
  a.size === b.size &&
  a.mtime === b.mtime &&
  a.mode === b.mode &&
  a.linkname === b.linkname;

/** Runs tasks with at most `limit` at once; `drain` waits for all and rethrows the first error. */
export function boundedQueue(limit: number) {
  const running = new Set<Promise<void>>();
  let failure: unknown;
  return {
    async add(task: () => Promise<void>): Promise<void> {
      if (failure) throw failure;
      while (running.size >= limit) await Promise.race(running);
      const promise = task()
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => running.delete(promise));
      running.add(promise);
    },
    async drain(): Promise<void> {
      await Promise.all(running);
      if (failure) throw failure;
    },
  };
}

export function parentDirs(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const path of paths) {
    for (let dir = posix.dirname(path); dir !== '.'; dir = posix.dirname(dir)) dirs.add(dir);
  }
  return [...dirs].sort();
}

/** Writes one tar entry from a stream, minding backpressure. */
export function writeEntry(
  pack: tar.Pack,
  header: Parameters<tar.Pack['entry']>[0],
  body: Readable,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const entry = pack.entry(header, (error) => (error ? reject(error) : resolve()));
    (async () => {
      for await (const chunk of body) {
        if (!entry.write(chunk as Buffer))
          await new Promise<void>((done) => entry.once('drain', () => done()));
      }
      entry.end(Buffer.alloc(0));
    })().catch(reject);
  });
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
