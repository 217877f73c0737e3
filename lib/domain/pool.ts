import { randomBytes } from 'node:crypto';

/** Carried by every container of the warm pool, claimed or not: labels cannot change later. */
export const POOL_LABEL = 'matrx.pool';
/** The hash of what a pool container was made with (image, limits, network, environment). */
export const POOL_CONFIG_LABEL = 'matrx.pool_config';
/** An unclaimed pool container's name; a claim renames it to its sandbox's id. */
export const POOL_NAME_PREFIX = 'matrx-pool-';

export function newPoolName(): string {
  return `${POOL_NAME_PREFIX}${randomBytes(6).toString('hex')}`;
}

/**
 * Who a claimed pool container belongs to: what a sandbox container made for its user carries in
 * its labels and environment, which a pool container, made before it had a user, cannot.
 */
export interface SandboxIdentity {
  sandboxId: string;
  userId: string;
  createdAt: Date;
  template: string;
  ttlSeconds: number;
  idleTimeoutSeconds: number;
  /** What the sandbox's commands see in their environment besides the container's own. */
  env: Record<string, string>;
}

/** What a claim sets on the container besides its identity. */
export interface ClaimLimits {
  cpuLimit: number;
  memoryLimitBytes: number;
}
