import { ValidationError } from '../errors.js';
import { USER_ID_PATTERN } from './sandbox.js';

/** How a user's files are laid out in the bucket: a prefix per user and tier. */
export type Tier = 'hot' | 'cold';
export const TIERS: readonly Tier[] = ['hot', 'cold'];
/** A zero-byte object that marks a prefix as existing. */
export const KEEP = '.keep';

/**
 * A path that stays where it is put as the tail of a key: segments that are neither empty, `.`
 * nor `..`, and no NUL. S3 keeps such segments literally, but S3-compatible stores on a
 * filesystem and tools that sync a bucket to disk resolve them.
 */
export function isStorablePath(path: string): boolean {
  return (
    path.length > 0 &&
    !path.includes('\0') &&
    path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..')
  );
}

/**
 * The one function that names an object of a user: `users/<id>/<tier>/<path>`, or the tier's
 * prefix when `path` is empty. It checks the id and the path again, whoever the caller, so that
 * no key it gives resolves outside `users/<id>/`: a ValidationError otherwise.
 */
export function userKey(userId: string, tier: Tier, path = ''): string {
  if (!USER_ID_PATTERN.test(userId)) {
    throw new ValidationError([
      { loc: ['user_id'], msg: 'is not a valid user id for a storage key', type: 'value_error' },
    ]);
  }
  if (!TIERS.includes(tier) || (path !== '' && !isStorablePath(path))) {
    throw new ValidationError([
      { loc: ['path'], msg: 'would leave the user prefix as a storage key', type: 'value_error' },
    ]);
  }
  return `users/${userId}/${tier}/${path}`;
}

export interface TierUsage {
  totalSizeBytes: number;
  totalObjects: number;
}

export type StorageUsage = Record<Tier, TierUsage>;
