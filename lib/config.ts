import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_TTL_SECONDS } from './domain/sandbox.js';
import { DEFAULT_TEMPLATE } from './domain/sandboxConfig.js';
import { parseSize, SIZE_PATTERN } from './domain/size.js';

const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'] as const;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((value) => ['true', '1', 'yes'].includes(value));

const int = (min: number, max: number) =>
  z.coerce.number({ message: 'must be a number' }).int('must be a whole number').min(min).max(max);

const size = z
  .string()
  .regex(SIZE_PATTERN, 'must be a size such as 512m or 4g')
  .transform(parseSize);

/** `name=image,...`: the templates callers may pick besides `default`. */
const templates = z.string().transform((value, context) => {
  const byName: Record<string, string> = {};
  for (const entry of value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const [name = '', image = ''] = entry.split(/=(.*)/s).map((part) => part.trim());
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name) || !image) {
      context.addIssue({ code: 'custom', message: `must be name=image,...: ${entry} is not` });
    } else if (name === DEFAULT_TEMPLATE) {
      context.addIssue({ code: 'custom', message: 'default is MATRX_SANDBOX_IMAGE: name it so' });
    } else byName[name] = image;
  }
  return byName;
});

const networks = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.enum(['none', 'internet'], { message: 'must list none and/or internet' }))
      .min(1, 'must list none and/or internet'),
  );

interface SettingSpec<T extends z.ZodType> {
  schema: T;
  /** The default as it would be written in the environment; none means unset. */
  default?: string;
  /** How the table shows a default that is computed (the machine's hostname). */
  defaultLabel?: string;
  /** What the setting does, for the README's settings table and `.env.example`. */
  meaning: string;
  /** The variable's name when it is not `MATRX_` and the key (a standard AWS variable). */
  env?: string;
}

const setting = <T extends z.ZodType>(spec: SettingSpec<T>) => spec;

/**
 * Every setting of the service, once: its validation, default and meaning. Nothing reads the
 * environment for a setting anywhere else.
 */
export const SETTINGS = {
  HOST: setting({
    schema: z.string().min(1),
    default: '0.0.0.0',
    meaning: 'Address the API listens on.',
  }),
  PORT: setting({ schema: int(1, 65535), default: '8000', meaning: 'Port the API listens on.' }),
  LAMBDA_PORT: setting({
    schema: int(0, 65535),
    default: '3002',
    meaning:
      "serverless-offline's own Lambda-invoke port (no API key): on 127.0.0.1 only, whatever MATRX_HOST is.",
  }),
  DRAIN_TIMEOUT_SECONDS: setting({
    schema: int(0, 3600),
    default: '630',
    meaning: 'On SIGTERM, how long requests in flight may finish (an exec may run 600 s).',
  }),
  DEBUG: setting({
    schema: bool,
    default: 'false',
    meaning: 'true: log at DEBUG unless MATRX_LOG_LEVEL says otherwise.',
  }),
  LOG_LEVEL: setting({
    schema: z.enum(LOG_LEVELS).optional(),
    defaultLabel: 'INFO (DEBUG with MATRX_DEBUG)',
    meaning: 'DEBUG, INFO, WARNING, ERROR or CRITICAL.',
  }),
  LOG_FORMAT: setting({
    schema: z.enum(['json', 'text']),
    default: 'json',
    meaning: 'json: one JSON object per line; text: one readable line per entry.',
  }),
  SLOW_CALL_MS: setting({
    schema: int(1, 600_000),
    default: '1000',
    meaning: 'A Docker, Postgres or S3 call slower than this is logged at WARNING.',
  }),
  SANDBOX_IMAGE: setting({
    schema: z.string().min(1),
    default: 'matrx-sandbox:latest',
    meaning: 'Image of every sandbox (`npm run image` builds it).',
  }),
  DOCKER_NETWORK: setting({
    schema: z.string().min(1),
    default: 'bridge',
    meaning: 'Docker network of a sandbox whose config names none (`none`: no network).',
  }),
  INTERNET_NETWORK: setting({
    schema: z.string().min(1),
    default: 'bridge',
    meaning: 'Docker network of a sandbox whose config asks for `"network": "internet"`.',
  }),
  ALLOWED_NETWORKS: setting({
    schema: networks,
    default: 'none,internet',
    meaning: 'The `network` values a config may ask for: `none`, `internet` or both.',
  }),
  SANDBOX_TEMPLATES: setting({
    schema: templates,
    default: '',
    defaultLabel: 'none (only `default`)',
    meaning:
      'More images a config may pick by `template`: `name=image,...`; `default` is MATRX_SANDBOX_IMAGE.',
  }),
  DOCKER_RUNTIME: setting({
    schema: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be a runtime name such as crun or runsc')
      .optional(),
    defaultLabel: "none (the engine's default, runc)",
    meaning:
      'OCI runtime of every sandbox (`crun`, `runsc`), as registered with the Docker engine; an unknown one stops startup.',
  }),
  CONTAINER_CPU_LIMIT: setting({
    schema: z.coerce.number({ message: 'must be a number' }).positive(),
    default: '2.0',
    meaning: 'CPU cores per sandbox, and the most a config may ask for.',
  }),
  CONTAINER_MEMORY_LIMIT: setting({
    schema: size,
    default: '4g',
    meaning: 'Memory per sandbox (512m, 4g), and the most a config may ask for.',
  }),
  CONTAINER_DISK_LIMIT: setting({
    schema: size,
    default: '20g',
    meaning:
      "Disk per sandbox (what it writes, home included): the engine's quota where it can, else measured and a sandbox over it ended, `failed`.",
  }),
  READY_TIMEOUT_SECONDS: setting({
    schema: int(1, 600),
    default: '60',
    meaning: 'How long a sandbox may take to become ready before it is failed.',
  }),
  SHUTDOWN_TIMEOUT_SECONDS: setting({
    schema: int(0, 600),
    default: '30',
    meaning: "A sandbox's time to stop on SIGTERM; a graceful stop waits this + 10 s, then kills.",
  }),
  MAX_SESSION_DURATION_SECONDS: setting({
    schema: int(60, 7 * 24 * 3600),
    default: String(DEFAULT_TTL_SECONDS),
    meaning:
      'Longest a sandbox lives, and its TTL when its config gives none: then it is ended, `expired`.',
  }),
  IDLE_TIMEOUT_SECONDS: setting({
    schema: z.coerce
      .number({ message: 'must be a number' })
      .int('must be a whole number')
      .refine(
        (seconds) => seconds === 0 || (seconds >= 60 && seconds <= 7 * 24 * 3600),
        'must be 0 (off) or 60 to 604800',
      ),
    default: '0',
    meaning:
      'A sandbox with no command or heartbeat this long is ended, `expired`; 0: never. A config may set its own.',
  }),
  HEALTHCHECK_INTERVAL_SECONDS: setting({
    schema: int(1, 3600),
    default: '30',
    meaning:
      "Seconds between checks of each sandbox's disk use against MATRX_CONTAINER_DISK_LIMIT (when measured, not quota).",
  }),
  STOPPED_RETENTION_SECONDS: setting({
    schema: int(0, 30 * 24 * 3600),
    default: '3600',
    meaning: 'How long the memory registry keeps a stopped sandbox readable (Postgres keeps all).',
  }),
  MAX_STOPPED_SANDBOXES: setting({
    schema: int(0, 1_000_000),
    default: '1000',
    meaning: 'The most stopped sandboxes the memory registry keeps, oldest forgotten first.',
  }),
  MAX_COMMAND_LENGTH: setting({
    schema: int(1, 1_000_000),
    default: '10000',
    meaning: 'Longest command, in characters.',
  }),
  COMMAND_TIMEOUT_SECONDS: setting({
    schema: int(1, 600),
    default: '300',
    meaning: 'Timeout of a command that gives none.',
  }),
  MAX_OUTPUT_BYTES: setting({
    schema: int(1024, 64 * 1024 * 1024),
    default: '1048576',
    meaning: 'Bytes kept per output stream of a command; the rest is dropped and flagged.',
  }),
  PROCESS_OUTPUT_BYTES: setting({
    schema: int(64 * 1024, 1024 ** 3),
    default: '16777216',
    meaning:
      'Bytes of output kept per stream of a background process, in its sandbox; past it the oldest go.',
  }),
  MAX_FILE_BYTES: setting({
    schema: int(1024, 1024 ** 3),
    default: '104857600',
    meaning:
      'Largest file the Files API reads, writes or edits, and largest archive it moves; past it a 413.',
  }),
  S3_BUCKET: setting({
    schema: z.string().regex(BUCKET_NAME, 'must be a valid S3 bucket name').optional(),
    defaultLabel: 'none (`npm start`: an embedded S3 server)',
    meaning: "Bucket of users' files; none: homes are not kept.",
  }),
  S3_REGION: setting({
    schema: z.string().min(1),
    default: 'us-east-1',
    meaning: 'Region of the bucket.',
  }),
  S3_ENDPOINT: setting({
    schema: z.url({ message: 'must be a URL such as http://127.0.0.1:9000' }).optional(),
    env: 'AWS_ENDPOINT_URL_S3',
    defaultLabel: 'AWS S3',
    meaning: 'An S3-compatible server (MinIO, LocalStack), addressed path-style.',
  }),
  EMBEDDED_S3_PORT: setting({
    schema: int(0, 65535),
    default: '4569',
    meaning: 'Port of the embedded S3 server of `npm start`.',
  }),
  EMBEDDED_S3_DIR: setting({
    schema: z.string().min(1),
    default: '.data/s3',
    meaning: "Folder of the embedded S3 server's data.",
  }),
  API_KEY: setting({
    schema: z.string().transform((value) =>
      value
        .split(',')
        .map((key) => key.trim())
        .filter((key) => key.length > 0),
    ),
    default: '',
    defaultLabel: 'none (the API is open)',
    meaning: 'API keys, comma-separated (all accepted, for rotation); every route but /health.',
  }),
  API_KEY_HEADER: setting({
    schema: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name'),
    default: 'X-API-Key',
    meaning: 'Header that carries the key, besides `Authorization: Bearer`.',
  }),
  PUBLIC_DOCS: setting({
    schema: bool,
    default: 'false',
    meaning: 'true: /docs and /openapi.json need no API key (every other route still does).',
  }),
  SANDBOX_STORE: setting({
    schema: z.enum(['memory', 'postgres']),
    default: 'memory',
    meaning: 'The registry: `memory` (adopts live containers after a restart) or `postgres`.',
  }),
  DATABASE_URL: setting({
    schema: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection URL')
      .optional(),
    meaning: 'postgres://user:password@host:5432/db; required with `postgres`.',
  }),
  DATABASE_POOL_SIZE: setting({
    schema: int(2, 100),
    default: '10',
    meaning: 'Postgres connections per process.',
  }),
  DATABASE_CONNECT_TIMEOUT_MS: setting({
    schema: int(100, 120_000),
    default: '5000',
    meaning: 'How long to wait for a Postgres connection.',
  }),
  WARM_POOL_SIZE: setting({
    schema: int(0, 100),
    default: '0',
    meaning:
      'Started, ready containers of the default template waiting for a create; 0: none, every create starts its own.',
  }),
  COLD_TIER: setting({
    schema: z.enum(['auto', 'off'], { message: 'must be auto or off' }),
    default: 'auto',
    meaning:
      "/data/cold as the user's `users/<id>/cold/` prefix, mounted on the host with rclone (root, FUSE): `auto` where the host can (else reported unavailable), `off` never.",
  }),
  COLD_ROOT: setting({
    schema: z.string().regex(/^\/[^\0]*[^/\0]$/, 'must be an absolute path'),
    default: '/var/lib/matrx/cold',
    meaning:
      "Host directory of the cold tier's mounts (the bucket's, one per user, one per sandbox).",
  }),
  COLD_DIR_CACHE_SECONDS: setting({
    schema: int(1, 3600),
    default: '5',
    meaning:
      "How long a cold-tier listing is trusted before S3 is asked again: how soon another host's writes show.",
  }),
  TEST_CLAIM_PAUSE_MS: setting({
    schema: int(0, 600_000),
    default: '0',
    meaning:
      'Tests only: a claim of a pool container waits this long once it is renamed, so a test can kill the API mid-claim.',
  }),
  HOST_ID: setting({
    schema: z
      .string()
      .regex(/^[a-zA-Z0-9._-]{1,255}$/, 'must be letters, digits, dots, dashes or underscores')
      .optional(),
    defaultLabel: "the machine's hostname",
    meaning: 'This host in the registry; several hosts can share one database.',
  }),
  RECONCILE_INTERVAL_SECONDS: setting({
    schema: int(1, 24 * 3600),
    default: '30',
    meaning: 'Seconds between reconcile passes; one also runs at startup.',
  }),
  RECONCILE_GRACE_SECONDS: setting({
    schema: int(0, 3600),
    default: '30',
    meaning: 'A pass leaves sandboxes younger than this alone.',
  }),
  RECONCILE_STUCK_SECONDS: setting({
    schema: int(0, 24 * 3600),
    default: '900',
    meaning: 'A create or shutdown with no progress this long was interrupted: a pass ends it.',
  }),
  RECONCILE_CONCURRENCY: setting({
    schema: int(1, 64),
    default: '4',
    meaning: 'Sandboxes a pass acts on at once.',
  }),
  SCHEDULED_RECONCILE: setting({
    schema: z
      .enum(['true', 'false'], { message: 'must be true or false' })
      .transform((v) => v === 'true'),
    default: 'false',
    meaning:
      "true: serverless.yml's scheduled `reconcile` function runs a pass every minute; otherwise that function runs nothing.",
  }),
} as const;

type Specs = typeof SETTINGS;
export type SettingKey = keyof Specs;
export type Settings = { [K in SettingKey]: z.output<Specs[K]['schema']> } & {
  LOG_LEVEL: (typeof LOG_LEVELS)[number];
  HOST_ID: string;
};

/** The environment variable a setting is read from. */
export function variableOf(key: SettingKey): string {
  const spec: SettingSpec<z.ZodType> = SETTINGS[key];
  return spec.env ?? `MATRX_${key}`;
}

export interface SettingProblem {
  variable: string;
  reason: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: SettingProblem[]) {
    super(
      problems.length === 1
        ? `Invalid setting ${problems[0]?.variable}: ${problems[0]?.reason}`
        : `Invalid settings:\n${problems.map((p) => `  ${p.variable}: ${p.reason}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment once. Blank values count as unset, so `.env.example` can list every
 * variable empty. Every bad value is reported at once, in a ConfigError naming each variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Settings {
  const settings: Record<string, unknown> = {};
  const problems: SettingProblem[] = [];
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const spec: SettingSpec<z.ZodType> = SETTINGS[key];
    const given = env[variableOf(key)]?.trim() || undefined;
    const parsed = spec.schema.safeParse(given ?? spec.default);
    if (parsed.success) settings[key] = parsed.data;
    else
      problems.push({
        variable: variableOf(key),
        reason: parsed.error.issues[0]?.message ?? 'invalid value',
      });
  }
  settings.HOST_ID ??= hostname();
  settings.LOG_LEVEL ??= settings.DEBUG ? 'DEBUG' : 'INFO';
  if (settings.SANDBOX_STORE === 'postgres' && !settings.DATABASE_URL) {
    problems.push({
      variable: variableOf('DATABASE_URL'),
      reason: 'is required when MATRX_SANDBOX_STORE is postgres',
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return settings as Settings;
}
