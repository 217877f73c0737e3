import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { Logger } from '@aws-lambda-powertools/logger';
import tar from 'tar-stream';
import { ValidationError } from '../../lib/errors.js';
import type {
  ContainerRuntime,
  FetchedObject,
  ObjectStorage,
  StoredObject,
} from '../../lib/ports.js';
import { MANIFEST_NAME } from '../../lib/service/homeArchive.js';
import { HomeSync } from '../../lib/service/homeSync.js';

const logger = new Logger({ logLevel: 'CRITICAL' });

function archiveOf(entries: Record<string, string>): Readable {
  const pack = tar.pack();
  for (const [name, text] of Object.entries(entries)) pack.entry({ name, mode: 0o644 }, text);
  pack.finalize();
  return Readable.from(pack);
}

/** A stopped container whose home holds `kept.txt`, and whose manifest says what was restored. */
function container(manifest: Record<string, unknown>): ContainerRuntime {
  // HomeSync.save asks these only.
  return {
    changedPaths: async () => new Set(['kept.txt']),
    readArchive: async (_id: string, path: string) =>
      path === `/${MANIFEST_NAME}`
        ? archiveOf({ [MANIFEST_NAME]: JSON.stringify(manifest) })
        : archiveOf({ 'agent/kept.txt': 'kept' }),
    writeArchive: async (_id: string, _path: string, archive: Readable) => {
      archive.resume();
    },
  } as unknown as ContainerRuntime;
}

/** A bucket in memory that records what is written, read and deleted. */
function bucket(keys: string[] = []) {
  const done = { put: [] as string[], get: [] as string[], deleted: [] as string[] };
  const storage = {
    bucket: 'b',
    put: async (key: string) => {
      done.put.push(key);
    },
    deleteMany: async (deleted: string[]) => {
      done.deleted.push(...deleted);
      return deleted.length;
    },
    async *list(prefix: string): AsyncIterable<StoredObject> {
      for (const key of keys) if (key.startsWith(prefix)) yield { key, size: 1 } as StoredObject;
    },
    get: async (key: string): Promise<FetchedObject> => {
      done.get.push(key);
      return { body: Readable.from([Buffer.from('x')]), size: 1, metadata: {} };
    },
  } as unknown as ObjectStorage;
  return { storage, done };
}

const state = { size: 1, mtime: 1, mode: 0o644 };

describe("a home's keys stay under its user's prefix", () => {
  it("a manifest root rewrote inside the sandbox cannot delete another user's files", async () => {
    const { storage, done } = bucket();
    const homes = new HomeSync(
      storage,
      container({ 'gone.txt': state, '../../bob/hot/notes.txt': state, 'a/../../x': state }),
      logger,
    );
    const summary = await homes.save('alice', 'c1');
    expect(done.deleted).toEqual(['users/alice/hot/gone.txt']);
    expect(summary.deleted).toBe(1);
    expect(done.put).toEqual(['users/alice/hot/kept.txt']);
  });

  it('a restore leaves out keys whose path has . or .. segments', async () => {
    const { storage, done } = bucket([
      'users/alice/hot/.keep',
      'users/alice/hot/a.txt',
      'users/alice/hot/../../bob/hot/b.txt',
      'users/alice/hot/./c.txt',
      'users/alice/hot/dir/',
    ]);
    const homes = new HomeSync(storage, container({}), logger);
    expect(await homes.restore('alice', 'c1')).toBe(1);
    expect(done.get).toEqual(['users/alice/hot/a.txt']);
  });

  it.each(['..', '.', '', '.x', 'a/b'])(
    'a user id %j (a label of a container adopted) is refused before any key is used',
    async (userId) => {
      const { storage, done } = bucket();
      const homes = new HomeSync(storage, container({}), logger);
      await expect(homes.save(userId, 'c1')).rejects.toBeInstanceOf(ValidationError);
      await expect(homes.restore(userId, 'c1')).rejects.toBeInstanceOf(ValidationError);
      expect(done).toEqual({ put: [], get: [], deleted: [] });
    },
  );
});
