import { posix } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { HOT_PATH } from '../domain/sandbox.js';
import { isStorablePath, KEEP, TIERS, userKey } from '../domain/storage.js';
import { DOCKER, NotFoundError, S3, UnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ContainerRuntime, FetchedObject, ObjectStorage } from '../ports.js';
import {
  boundedQueue,
  isSkipped,
  MANIFEST_NAME,
  metadataOf,
  parentDirs,
  readAll,
  same,
  stateOf,
  writeEntry,
  type FileState,
  type Snapshot,
} from './homeArchive.js';

const AGENT_UID = 1000;
/** getArchive of /home/agent names every entry under this folder. */
const ARCHIVE_ROOT = `${posix.basename(HOT_PATH)}/`;
/** Files up to this size are read whole so several upload at once; larger ones stream. */
const SMALL_FILE_BYTES = 1024 * 1024;
const PARALLEL_TRANSFERS = 16;

/** The files of a user's saved home in S3: key and path under the home. */
export type HomeListing = { key: string; path: string }[];

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
   * What a restore of the user's home will fetch: one S3 list, which a claim starts before it
   * has its container. A new user's prefixes are marked off the create's path.
   */
  async list(userId: string): Promise<HomeListing> {
    const prefix = userKey(userId, 'hot');
    const objects: HomeListing = [];
    let hasKeep = false;
    for await (const object of this.storage.list(prefix)) {
      const path = object.key.slice(prefix.length);
      if (path === KEEP) hasKeep = true;
      // Folder markers, and keys some other writer gave `..` or `.` segments, are not files here.
      else if (isStorablePath(path)) objects.push({ key: object.key, path });
    }
    if (!hasKeep) {
      this.#ensurePrefixes(userId).catch((error: unknown) =>
        this.logger.warn("a new user's S3 prefixes could not be marked", {
          user_id: userId,
          error,
        }),
      );
    }
    return objects;
  }

  /**
   * Puts the user's saved home into the container (created and not yet started, or a claimed
   * pool container, running), in one archive extracted at `/`: the files under the home, then the
   * manifest of what was restored. A restore cut short leaves no manifest, so its save deletes
   * nothing: it can only upload again.
   */
  async restore(
    userId: string,
    containerId: string,
    listing: Promise<HomeListing> = this.list(userId),
  ): Promise<number> {
    const objects = await listing;
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
    // A bad id is refused here, before it could pass for the engine failing mid-archive.
    userKey(userId, 'hot');
    // Files the image brought and the agent left alone (its dotfiles) are the image's, not the
    // user's.
    // Asked first: a container that is gone fails here, before the manifest read could mistake it.
    const changed = await this.runtime.changedPaths(containerId, HOT_PATH);
    const snapshot = await this.#readManifest(containerId);
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
        if (
          !isStorablePath(path) ||
          !ours ||
          isSkipped(path) ||
          (kind !== 'file' && kind !== 'symlink')
        ) {
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
        const key = userKey(userId, 'hot', path);
        if (state.size <= SMALL_FILE_BYTES) {
          const body = await readAll(stream);
          await uploads.add(() => toS3(this.storage.put(key, body, state.size, metadataOf(state))));
        } else {
          await toS3(this.storage.put(key, Readable.from(stream), state.size, metadataOf(state)));
        }
        next();
      })().catch((error: unknown) => extract.destroy(error as Error));
    });
    let archiveFailed = false;
    try {
      await new Promise<void>((resolve, reject) => {
        archive.once('error', (error) => {
          archiveFailed = true;
          reject(error);
        });
        extract.once('error', reject);
        extract.once('finish', resolve);
        archive.pipe(extract);
      });
      await uploads.drain();
    } catch (error) {
      // An upload that failed because the archive did is the engine's failure, not S3's.
      if (error instanceof UnavailableError && error.dependency === S3 && !archiveFailed) {
        throw error;
      }
      throw new UnavailableError(DOCKER, 'Reading the home directory from the container failed', {
        cause: error,
      });
    }
    // The manifest is a file in the container, which root there can rewrite: only paths that name
    // a file of this user's home are deleted.
    const gone = [...snapshot.keys()].filter(
      (path) => !seen.has(path) && !isSkipped(path) && isStorablePath(path),
    );
    const goneKeys = gone.map((path) => userKey(userId, 'hot', path));
    summary.deleted = goneKeys.length ? await this.storage.deleteMany(goneKeys) : 0;
    this.logger.info('home saved', { user_id: userId, ...summary });
    return summary;
  }

  async #ensurePrefixes(userId: string): Promise<void> {
    await Promise.all(
      TIERS.map((tier) => this.storage.put(userKey(userId, tier, KEEP), Buffer.alloc(0), 0, {})),
    );
  }
}

/** An upload's failure, named as S3's so the save can tell it from the archive's. */
function toS3(upload: Promise<void>): Promise<void> {
  return upload.catch((error: unknown) => {
    throw new UnavailableError(S3, 'Saving the home directory to S3 failed', { cause: error });
  });
}

export interface SaveSummary {
  uploaded: number;
  unchanged: number;
  deleted: number;
  bytes: number;
}
