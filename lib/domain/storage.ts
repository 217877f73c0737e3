/** How a user's files are laid out in the bucket: a prefix per user and tier. */
export type Tier = 'hot' | 'cold';
export const TIERS: readonly Tier[] = ['hot', 'cold'];
/** A zero-byte object that marks a prefix as existing. */
export const KEEP = '.keep';

export function userPrefix(userId: string, tier: Tier): string {
  return `users/${userId}/${tier}/`;
}

export interface TierUsage {
  totalSizeBytes: number;
  totalObjects: number;
}

export type StorageUsage = Record<Tier, TierUsage>;
