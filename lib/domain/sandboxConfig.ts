import { parseSize } from './size.js';

/** The `config` keys of a create this service knows; any other key is kept as it came. */
export interface KnownConfig {
  template?: string;
  cpu?: number;
  memory?: string;
  ttl_seconds?: number;
  env?: Record<string, string>;
  network?: 'none' | 'internet';
  idle_timeout_seconds?: number;
}

/** What the host allows and gives when a create says nothing. */
export interface ConfigDefaults {
  /** By template name; `default` is the sandbox image. */
  templates: Record<string, string>;
  cpuLimit: number;
  memoryLimitBytes: number;
  maxSessionSeconds: number;
  /** The Docker network of a sandbox that names none, and of `internet`. */
  defaultNetwork: string;
  internetNetwork: string;
  idleTimeoutSeconds: number;
}

/** A create's config with every default applied: what the container is made with. */
export interface ResolvedConfig {
  template: string;
  image: string;
  cpu: number;
  memoryBytes: number;
  ttlSeconds: number;
  env: Record<string, string>;
  network: string;
  idleTimeoutSeconds: number;
}

export const DEFAULT_TEMPLATE = 'default';
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_ENV_ENTRIES = 64;
export const MAX_ENV_BYTES = 32 * 1024;
export const MIN_CPU = 0.1;
export const MIN_MEMORY_BYTES = 64 * 1024 ** 2;
export const MIN_TTL_SECONDS = 60;
/** What the env of a sandbox shows in place of each value. */
export const MASK = '***';

/**
 * Set by the service in every sandbox, so a caller's env cannot change them: the sandbox's
 * identity, and the tag by which a command's processes are found and killed.
 */
export const RESERVED_ENV = new Set([
  'SANDBOX_ID',
  'USER_ID',
  'S3_BUCKET',
  'S3_REGION',
  'HOT_PATH',
  'COLD_PATH',
  'SHUTDOWN_TIMEOUT_SECONDS',
  'MATRX_EXEC_ID',
]);

/** Applies the host's defaults to a config already validated against its caps. */
export function resolveConfig(config: KnownConfig, defaults: ConfigDefaults): ResolvedConfig {
  const template = config.template ?? DEFAULT_TEMPLATE;
  const network =
    config.network === undefined
      ? defaults.defaultNetwork
      : config.network === 'none'
        ? 'none'
        : defaults.internetNetwork;
  return {
    template,
    image: defaults.templates[template] ?? defaults.templates[DEFAULT_TEMPLATE] ?? '',
    cpu: config.cpu ?? defaults.cpuLimit,
    memoryBytes: config.memory === undefined ? defaults.memoryLimitBytes : parseSize(config.memory),
    ttlSeconds: config.ttl_seconds ?? defaults.maxSessionSeconds,
    env: config.env ?? {},
    network,
    idleTimeoutSeconds: config.idle_timeout_seconds ?? defaults.idleTimeoutSeconds,
  };
}

/** The config as the API shows it: each env value masked, everything else as it came. */
export function maskedConfig(config: Record<string, unknown>): Record<string, unknown> {
  const env = config.env;
  if (typeof env !== 'object' || env === null) return config;
  return { ...config, env: Object.fromEntries(Object.keys(env).map((name) => [name, MASK])) };
}
