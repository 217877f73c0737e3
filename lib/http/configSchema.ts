import { z } from 'zod';
import {
  DEFAULT_TEMPLATE,
  ENV_NAME_PATTERN,
  MAX_ENV_BYTES,
  MAX_ENV_ENTRIES,
  MIN_CPU,
  MIN_MEMORY_BYTES,
  MIN_TTL_SECONDS,
  RESERVED_ENV,
} from '../domain/sandboxConfig.js';
import { parseSize, SIZE_PATTERN } from '../domain/size.js';

/** What this host lets a create ask for: the settings' caps. */
export interface ConfigCaps {
  /** Template names besides `default`. */
  templates: readonly string[];
  cpuLimit: number;
  memoryLimitBytes: number;
  maxSessionSeconds: number;
  allowedNetworks: readonly ('none' | 'internet')[];
}

const asSize = (bytes: number) =>
  bytes % 1024 ** 3 === 0 ? `${bytes / 1024 ** 3}g` : `${Math.floor(bytes / 1024 ** 2)}m`;

export function ttlSeconds(caps: ConfigCaps) {
  return z.number().int().min(MIN_TTL_SECONDS).max(caps.maxSessionSeconds);
}

/** Environment variables a caller sets: a sandbox's config, a command's or a process's own. */
export const envVars = z
  .record(
    z
      .string()
      .regex(ENV_NAME_PATTERN, 'must be a variable name: letters, digits, underscores')
      .refine((name) => !RESERVED_ENV.has(name), 'is set by the service'),
    z.string().refine((value) => !value.includes('\0'), 'must not contain NUL'),
  )
  .refine(
    (vars) => Object.keys(vars).length <= MAX_ENV_ENTRIES,
    `at most ${MAX_ENV_ENTRIES} variables`,
  )
  .refine(
    (vars) =>
      Object.entries(vars).reduce((bytes, [k, v]) => bytes + Buffer.byteLength(k + v), 0) <=
      MAX_ENV_BYTES,
    `at most ${MAX_ENV_BYTES / 1024} KiB of names and values together`,
  );

/**
 * The `config` of a create: the keys this service knows, checked against the host's caps; any
 * other key is kept as it came.
 */
export function sandboxConfig(caps: ConfigCaps) {
  const memoryCap = asSize(caps.memoryLimitBytes);
  const config = z.looseObject({
    template: z.enum([DEFAULT_TEMPLATE, ...caps.templates]).optional(),
    cpu: z.number().min(MIN_CPU).max(caps.cpuLimit).optional(),
    memory: z
      .string()
      .superRefine((size, context) => {
        // One check: a later one would run on what is not a size.
        const bytes = SIZE_PATTERN.test(size) ? parseSize(size) : NaN;
        const problem = Number.isNaN(bytes)
          ? 'must be a size such as 512m or 2g'
          : bytes < MIN_MEMORY_BYTES
            ? 'must be at least 64m'
            : bytes > caps.memoryLimitBytes
              ? `must be at most ${memoryCap}`
              : undefined;
        if (problem) context.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    ttl_seconds: ttlSeconds(caps).optional(),
    env: envVars.optional(),
    network: z.enum(caps.allowedNetworks.length > 0 ? caps.allowedNetworks : ['none']).optional(),
    idle_timeout_seconds: idleTimeout(caps.maxSessionSeconds).optional(),
  });
  return config.superRefine((given, context) => {
    const idle = given.idle_timeout_seconds;
    const ttl = given.ttl_seconds ?? caps.maxSessionSeconds;
    if (idle !== undefined && idle > ttl) {
      context.addIssue({
        code: 'custom',
        path: ['idle_timeout_seconds'],
        message: `must be at most the ttl_seconds (${ttl})`,
      });
    }
  });
}

/** 0 (off), or 60 s up to `max`. */
export function idleTimeout(max: number) {
  return z
    .number()
    .int()
    .max(max)
    .refine(
      (seconds) => seconds === 0 || seconds >= MIN_TTL_SECONDS,
      'must be 0 (off) or at least 60',
    );
}
