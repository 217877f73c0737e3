import { posix } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { HOT_PATH } from '../domain/sandbox.js';
import { NotFoundError, UnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ContainerRuntime, FetchedObject, ObjectStorage } from '../ports.js';

export type Tier = 'hot' | 'cold';
export const TIERS: readonly Tier[] = ['hot', 'cold'];
const KEEP = '.keep';
const AGENT_UID = 1000;
/** getArchive of /home/agent names every entry under this folder. */
const ARCHIVE_ROOT = `${posix.basename(HOT_PATH)}/`;
/** Files up to this size are read whole so several upload at once; larger ones stream. */
const SMALL_FILE_BYTES = 1024 * 1024;
const PARALLEL_TRANSFERS = 16;

/** What a sandbox restored, by path under the home: what its save may delete or skip. */
export type Snapshot = Map<string, FileState>;

/**
 * The snapshot is kept in the container itself, at its root, readable by root only: it lives
 * exactly as long as the files it describes, and survives a restart of the service.
 */
const MANIFEST_NAME = '.matrx-restored.json';

interface FileState {
  size: number;
  mtime: number;
  mode: number;
  linkname?: string;
}

export function userPrefix(userId: string, tier: Tier): string {
  return `users/${userId}/${tier}/`;
}

/** Never saved: temporary files, Finder litter, Python byte code. */
export function isSkipped(path: string): boolean {
  const name = posix.basename(path);
  return name.endsWith('.tmp') || name === '.DS_Store' || path.split('/').includes('__pycache__');
}

function metadataOf(state: FileState): Record<string, string> {
  return {
    mode: state.mode.toString(8),
    mtime: String(state.mtime),
    ...(state.linkname !== undefined && { linkname: encodeURIComponent(state.linkname) }),
  };
}

function stateOf(size: number, metadata: Record<string, string>): FileState {
  const mode = Number.parseInt(metadata.mode ?? '644', 8);
  return {
    size,
    mode: Number.isNaN(mode) ? 0o644 : mode,
    mtime: Number(metadata.mtime ?? 0) || Math.floor(Date.now() / 1000),
    ...(metadata.linkname !== undefined && { linkname: decodeURIComponent(metadata.linkname) }),
  };
}

const same = (a: FileState | undefined, b: FileState) =>
  a !== undefined &&
  a.size === b.size &&
  a.mtime === b.mtime &&
  a.mode === b.mode &&
  a.linkname === b.linkname;

/** Runs tasks with at most `limit` at once; `drain` waits for all and rethrows the first error. */
function boundedQueue(limit: number) {
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

/**
 * Moves a user's home between S3 and a container through Docker's archive API, streaming: the
 * orchestrator holds at most a few small files at a time, and the sandbox never sees credentials.
 */
export class HomeSync {
  constructor(
    private readonly storage: ObjectStorage,
    private readonly runtime: ContainerRuntime,
    private readonly logger: Logger,
  ) {}

  /** The manifest restore left in the container; none when there was nothing to restore. */
  async #readManifest(containerId: string): Promise<Snapshot> {
    let archive: Readable;
    try {
      archive = await this.runtime.readArchive(containerId, `/${MANIFEST_NAME}`);
    } catch (error) {
      if (error instanceof NotFoundError) return new Map();
      throw error;
    }
    const extract = tar.extract();
    archive.pipe(extract);
    try {
      for await (const entry of extract) {
        const text = (await readAll(entry)).toString('utf8');
        return new Map(Object.entries(JSON.parse(text) as Record<string, FileState>));
      }
      return new Map();
    } finally {
      archive.destroy();
    }
  }

  /**
   * Puts the user's saved home into the (created, not yet started) container, in one archive
   * extracted at `/`: the files under the home, then the manifest of what was restored. A restore
   * cut short leaves no manifest, so its save deletes nothing: it can only upload again.
   */
  async restore(userId: string, containerId: string): Promise<number> {
    const prefix = userPrefix(userId, 'hot');
    const objects: { key: string; path: string }[] = [];
    let hasKeep = false;
    for await (const object of this.storage.list(prefix)) {
      const path = object.key.slice(prefix.length);
      if (path === KEEP) hasKeep = true;
      else if (path && !path.endsWith('/')) objects.push({ key: object.key, path });
    }
    if (!hasKeep) await this.#ensurePrefixes(userId);
    const snapshot: Snapshot = new Map();
    if (objects.length === 0) return 0;

    const pack = tar.pack();
    const written = this.runtime.writeArchive(containerId, '/', Readable.from(pack));
    const underHome = (path: string) => `${HOT_PATH.slice(1)}/${path}`;
    try {
      for (const dir of parentDirs(objects.map((o) => o.path))) {
        pack.entry({
          name: underHome(dir),
          type: 'directory',
          mode: 0o755,
          uid: AGENT_UID,
          gid: AGENT_UID,
        });
      }
      // Fetches run ahead of the (sequential) tar, a few objects deep.
      const ahead: Promise<FetchedObject>[] = [];
      const fetchUpTo = (end: number) => {
        for (let i = ahead.length; i < Math.min(end, objects.length); i += 1) {
          const fetched = this.storage.get((objects[i] as { key: string }).key);
          // Awaited in order below; if the restore stops first, a failure here is not a crash.
          fetched.catch(() => undefined);
          ahead.push(fetched);
        }
      };
      for (const [i, object] of objects.entries()) {
        fetchUpTo(i + 1 + PARALLEL_TRANSFERS);
        const file = await (ahead[i] as Promise<FetchedObject>);
        const state = stateOf(file.size, file.metadata);
        const header = {
          name: underHome(object.path),
          mode: state.mode,
          mtime: new Date(state.mtime * 1000),
          uid: AGENT_UID,
          gid: AGENT_UID,
        };
        if (state.linkname !== undefined) {
          file.body.resume();
          pack.entry({ ...header, type: 'symlink', linkname: state.linkname });
        } else {
          await writeEntry(pack, { ...header, type: 'file', size: file.size }, file.body);
        }
        snapshot.set(object.path, state);
      }
      const manifest = Buffer.from(JSON.stringify(Object.fromEntries(snapshot)));
      pack.entry({ name: MANIFEST_NAME, mode: 0o600, uid: 0, gid: 0 }, manifest);
      pack.finalize();
      await written;
    } catch (error) {
      pack.destroy(error as Error);
      await written.catch(() => undefined);
      throw error;
    }
    this.logger.debug('home restored', { user_id: userId, files: snapshot.size });
    return snapshot.size;
  }

  /**
   * Makes S3 match the stopped container's home: new and changed files up, files this sandbox
   * restored and then deleted removed, only once the whole archive was read without error.
   * A container that is gone is a NotFoundError: its files went with it.
   */
  async save(userId: string, containerId: string): Promise<SaveSummary> {
    // Files the image brought and the agent left alone (its dotfiles) are the image's, not the
    // user's.
    // Asked first: a container that is gone fails here, before the manifest read could mistake it.
    const changed = await this.runtime.changedPaths(containerId, HOT_PATH);
    const snapshot = await this.#readManifest(containerId);
    const prefix = userPrefix(userId, 'hot');
    const archive = await this.runtime.readArchive(containerId, HOT_PATH);
    const seen = new Set<string>();
    const uploads = boundedQueue(PARALLEL_TRANSFERS);
    const summary: SaveSummary = { uploaded: 0, unchanged: 0, deleted: 0, bytes: 0 };
    const extract = tar.extract();
    extract.on('entry', (header, stream, next) => {
      void (async () => {
        const path = header.name.startsWith(ARCHIVE_ROOT)
          ? header.name.slice(ARCHIVE_ROOT.length).replace(/\/$/, '')
          : '';
        const kind = header.type;
        const ours = changed.has(path) || snapshot.has(path);
        if (!path || !ours || isSkipped(path) || (kind !== 'file' && kind !== 'symlink')) {
          stream.resume();
          return next();
        }
        seen.add(path);
        const state: FileState = {
          size: kind === 'file' ? (header.size ?? 0) : 0,
          mtime: Math.floor((header.mtime?.getTime() ?? Date.now()) / 1000),
          mode: (header.mode ?? 0o644) & 0o7777,
          ...(kind === 'symlink' && { linkname: header.linkname ?? '' }),
        };
        if (same(snapshot.get(path), state)) {
          summary.unchanged += 1;
          stream.resume();
          return next();
        }
        summary.uploaded += 1;
        summary.bytes += state.size;
        const key = prefix + path;
        if (state.size <= SMALL_FILE_BYTES) {
          const body = await readAll(stream);
          await uploads.add(() => this.storage.put(key, body, state.size, metadataOf(state)));
        } else {
          await this.storage.put(key, Readable.from(stream), state.size, metadataOf(state));
        }
        next();
      })().catch((error: unknown) => extract.destroy(error as Error));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        archive.once('error', reject);
        extract.once('error', reject);
        extract.once('finish', resolve);
        archive.pipe(extract);
      });
      await uploads.drain();
    } catch (error) {
      throw new UnavailableError('S3', 'Saving the home directory to S3 failed', { cause: error });
    }
    const gone = [...snapshot.keys()].filter((path) => !seen.has(path) && !isSkipped(path));
    summary.deleted = gone.length ? await this.storage.deleteMany(gone.map((p) => prefix + p)) : 0;
    this.logger.info('home saved', { user_id: userId, ...summary });
    return summary;
  }

  async #ensurePrefixes(userId: string): Promise<void> {
    await Promise.all(
      TIERS.map((tier) =>
        this.storage.put(userPrefix(userId, tier) + KEEP, Buffer.alloc(0), 0, {}),
      ),
    );
  }

  /** Resolves when the bucket answers; for health. */
  checkStorage(): Promise<void> {
    return this.storage.checkBucket();
  }

  /** Per tier, what the user stores. */
  async usage(
    userId: string,
  ): Promise<Record<Tier, { total_size_bytes: number; total_objects: number }>> {
    const result = {} as Record<Tier, { total_size_bytes: number; total_objects: number }>;
    for (const tier of TIERS) {
      let bytes = 0;
      let count = 0;
      for await (const object of this.storage.list(userPrefix(userId, tier))) {
        bytes += object.size;
        count += 1;
      }
      result[tier] = { total_size_bytes: bytes, total_objects: count };
    }
    return result;
  }

  /** Deletes every object of a tier, returns how many. */
  async empty(userId: string, tier: Tier): Promise<number> {
    const keys: string[] = [];
    for await (const object of this.storage.list(userPrefix(userId, tier))) keys.push(object.key);
    return keys.length ? this.storage.deleteMany(keys) : 0;
  }
}

export interface SaveSummary {
  uploaded: number;
  unchanged: number;
  deleted: number;
  bytes: number;
}

function parentDirs(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const path of paths) {
    for (let dir = posix.dirname(path); dir !== '.'; dir = posix.dirname(dir)) dirs.add(dir);
  }
  return [...dirs].sort();
}

/** Writes one tar entry from a stream, minding backpressure. */
function writeEntry(
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

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
