import { COLD_PATH, HOT_PATH } from '../domain/sandbox.js';

export interface HostEnvSettings {
  s3Bucket: string;
  s3Region: string;
  shutdownTimeoutSeconds: number;
}

/** What every sandbox of this host sees in its environment, whoever its user. */
export function hostEnv(settings: HostEnvSettings): Record<string, string> {
  return {
    S3_BUCKET: settings.s3Bucket,
    S3_REGION: settings.s3Region,
    HOT_PATH,
    COLD_PATH,
    SHUTDOWN_TIMEOUT_SECONDS: String(settings.shutdownTimeoutSeconds),
  };
}

/**
 * What a sandbox sees in its environment besides the host's: its caller's `env` first (the
 * service's own names are refused in a config, and win anyway), then its identity.
 */
export function identityEnv(
  sandbox: { sandboxId: string; userId: string },
  callerEnv: Record<string, string>,
): Record<string, string> {
  return { ...callerEnv, SANDBOX_ID: sandbox.sandboxId, USER_ID: sandbox.userId };
}
