import { hostname } from 'node:os';
import { z } from 'zod';

const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'] as const;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((value) => ['true', '1', 'yes'].includes(value));

const int = (min: number, max: number) =>
  z.coerce.number({ message: 'must be a number' }).int('must be a whole number').min(min).max(max);

const memorySize = z
  .string()
  .regex(/^\d+(\.\d+)?[bkmg]?$/i, 'must be a size such as 512m or 4g')
  .transform(parseMemorySize);

export function parseMemorySize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)([bkmg]?)$/i.exec(value.trim());
  if (!match) throw new Error(`not a size: ${value}`);
  const units: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return Math.floor(Number(match[1]) * (units[(match[2] ?? '').toLowerCase()] ?? 1));
}

/** Every setting of API.md, `MATRX_` prefixed in the environment, with its default. */
const settingsSchema = z.object({
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(1, 65535).default(8000),
  DEBUG: bool.default(false),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('INFO'),
  LOG_FORMAT: z.enum(['json', 'text']).default('json'),
  SLOW_CALL_MS: int(1, 600_000).default(1000),
  SANDBOX_IMAGE: z.string().min(1).default('matrx-sandbox:latest'),
  DOCKER_NETWORK: z.string().min(1).default('bridge'),
  CONTAINER_CPU_LIMIT: z.coerce.number({ message: 'must be a number' }).positive().default(2),
  CONTAINER_MEMORY_LIMIT: memorySize.default(4 * 1024 ** 3),
  CONTAINER_DISK_LIMIT: memorySize.default(20 * 1024 ** 3),
  S3_BUCKET: z.string().regex(BUCKET_NAME, 'must be a valid S3 bucket name').optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  MAX_SESSION_DURATION_SECONDS: int(60, 7 * 24 * 3600).default(7200),
  SHUTDOWN_TIMEOUT_SECONDS: int(0, 600).default(30),
  HEALTHCHECK_INTERVAL_SECONDS: int(1, 3600).default(30),
  MAX_COMMAND_LENGTH: int(1, 1_000_000).default(10000),
  COMMAND_TIMEOUT_SECONDS: int(1, 600).default(300),
  MAX_OUTPUT_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  READY_TIMEOUT_SECONDS: int(1, 600).default(60),
  STOPPED_RETENTION_SECONDS: int(0, 30 * 24 * 3600).default(3600),
  /** Comma-separated, so keys can be rotated one caller at a time; blank entries are dropped. */
  API_KEY: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((key) => key.trim())
        .filter((key) => key.length > 0),
    ),
  API_KEY_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name')
    .default('X-API-Key'),
  SANDBOX_STORE: z.enum(['memory', 'postgres']).default('memory'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection URL')
    .optional(),
  DATABASE_POOL_SIZE: int(2, 100).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: int(100, 120_000).default(5000),
  /** The host this process runs sandboxes on; several hosts can share one database. */
  HOST_ID: z
    .string()
    .regex(/^[a-zA-Z0-9._-]{1,255}$/, 'must be letters, digits, dots, dashes or underscores')
    .default(hostname()),
  RECONCILE_INTERVAL_SECONDS: int(1, 24 * 3600).default(30),
  /** Sandboxes younger than this are left to the request that is creating them. */
  RECONCILE_GRACE_SECONDS: int(0, 3600).default(30),
  /** A create or shutdown with no progress this long was interrupted; the reconciler ends it. */
  RECONCILE_STUCK_SECONDS: int(0, 24 * 3600).default(900),
  RECONCILE_CONCURRENCY: int(1, 64).default(4),
  /** On SIGTERM, requests in flight get this long to finish: an exec may run 600 s. */
  DRAIN_TIMEOUT_SECONDS: int(0, 3600).default(630),
  LAMBDA_PORT: int(0, 65535).default(3002),
  EMBEDDED_S3_PORT: int(0, 65535).default(4569),
  EMBEDDED_S3_DIR: z.string().min(1).default('.data/s3'),
});

export type Settings = z.output<typeof settingsSchema>;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`Invalid setting ${variable}: ${reason}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment once. Blank values count as unset, so `.env.example` can list every
 * variable empty. A bad value throws a ConfigError naming the variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Settings {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(settingsSchema.shape)) {
    const value = env[`MATRX_${key}`]?.trim();
    if (value) raw[key] = value;
  }
  const parsed = settingsSchema
    .refine((settings) => settings.SANDBOX_STORE !== 'postgres' || settings.DATABASE_URL, {
      message: 'is required when MATRX_SANDBOX_STORE is postgres',
      path: ['DATABASE_URL'],
    })
    .safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? 'unknown');
    throw new ConfigError(`MATRX_${key}`, issue?.message ?? 'invalid value');
  }
  return parsed.data;
}
