import { TIERS, userKey, type StorageUsage, type Tier } from '../domain/storage.js';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ObjectStorage } from '../ports.js';
import type { ColdTier } from './coldTier.js';

/** What a user keeps in S3, for the admin endpoints: sizes, and emptying a tier. */
export class UserStorage {
  constructor(
    /** Null when no bucket is configured. */
    private readonly storage: ObjectStorage | null,
    private readonly cold: Pick<ColdTier, 'refresh'>,
    private readonly logger: Logger,
  ) {}

  async usage(userId: string): Promise<StorageUsage> {
    const storage = this.#require();
    const usage = {} as StorageUsage;
    for (const tier of TIERS) {
      let totalSizeBytes = 0;
      let totalObjects = 0;
      for await (const object of storage.list(userKey(userId, tier))) {
        totalSizeBytes += object.size;
        totalObjects += 1;
      }
      usage[tier] = { totalSizeBytes, totalObjects };
    }
    return usage;
  }

  /** Deletes every object of a tier, returns how many. */
  async empty(userId: string, tier: Tier): Promise<number> {
    const storage = this.#require();
    const keys: string[] = [];
    for await (const object of storage.list(userKey(userId, tier))) keys.push(object.key);
    const deleted = keys.length ? await storage.deleteMany(keys) : 0;
    // The sandboxes that show this prefix at /data/cold see the files gone now, not in a while.
    if (tier === 'cold') await this.cold.refresh();
    this.logger.warn('user storage emptied', { user_id: userId, tier, deleted_objects: deleted });
    return deleted;
  }

  #require(): ObjectStorage {
    if (!this.storage) throw new UnavailableError('S3', 'No S3 bucket is configured');
    return this.storage;
  }
}
