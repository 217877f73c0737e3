import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { Logger } from '@aws-lambda-powertools/logger';
import tar from 'tar-stream';
import { NotFoundError, UnavailableError } from '../../lib/errors.js';
import type { ContainerRuntime, ObjectStorage } from '../../lib/ports.js';
import { HomeSync } from '../../lib/service/homeSync.js';

/** A home of one changed file, read from a container whose archive may break off. */
function runtimeWithHome(archive: () => Readable): ContainerRuntime {
  // HomeSync.save asks these three only.
  return {
    changedPaths: async () => new Set(['notes.txt']),
    readArchive: async (_id: string, path: string) => {
      if (path !== '/home/agent') throw new NotFoundError('no manifest');
      return archive();
    },
  } as unknown as ContainerRuntime;
}

function homeArchive(): Readable {
  const pack = tar.pack();
  pack.entry({ name: 'agent/notes.txt', mode: 0o644 }, 'hello');
  pack.finalize();
  return Readable.from(pack);
}

/** The engine's connection breaks before the archive is whole. */
function brokenArchive(): Readable {
  return new Readable({
    read() {
      this.destroy(new Error('socket hang up'));
    },
  });
}

function storage(put: ObjectStorage['put']): ObjectStorage {
  // HomeSync.save uploads and deletes only.
  return { bucket: 'b', put, deleteMany: async () => 0 } as unknown as ObjectStorage;
}

const logger = new Logger({ logLevel: 'CRITICAL' });
const uploaded = async () => undefined;

describe('saving a home names the dependency that failed', () => {
  it('saves a home whose archive reads whole', async () => {
    const homes = new HomeSync(storage(uploaded), runtimeWithHome(homeArchive), logger);
    expect(await homes.save('alice', 'c1')).toMatchObject({ uploaded: 1, bytes: 5 });
  });

  it('an archive the engine broke off is the Docker engine failing, not S3', async () => {
    const homes = new HomeSync(storage(uploaded), runtimeWithHome(brokenArchive), logger);
    const saving = homes.save('alice', 'c1');
    await expect(saving).rejects.toBeInstanceOf(UnavailableError);
    await expect(saving).rejects.toMatchObject({ dependency: 'Docker engine' });
  });

  it('an upload S3 refused is S3 failing', async () => {
    const refused = async () => {
      throw new UnavailableError('S3', 'S3 unavailable (put_object)');
    };
    const homes = new HomeSync(storage(refused), runtimeWithHome(homeArchive), logger);
    await expect(homes.save('alice', 'c1')).rejects.toMatchObject({
      dependency: 'S3',
      message: 'Saving the home directory to S3 failed',
    });
  });
});
