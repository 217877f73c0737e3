import { z } from 'zod';
import { MAX_OUTPUT_WAIT_SECONDS, MAX_PROCESS_TIMEOUT_SECONDS } from '../domain/process.js';
import { DEFAULT_EXEC_USER, SANDBOX_STATUSES, USER_ID_PATTERN } from '../domain/sandbox.js';
import { PROCESS_STATUSES } from '../ports.js';
import { envVars, sandboxConfig, ttlSeconds, type ConfigCaps } from './configSchema.js';

/** The request and response schemas: they validate requests and generate /openapi.json. */
export const MAX_EXEC_TIMEOUT_SECONDS = 600;

export const userId = z
  .string()
  .regex(
    USER_ID_PATTERN,
    'must be 1 to 255 letters, digits, dots, underscores or dashes, the first a letter or digit',
  );

export const sandboxIdPath = z.object({
  sandbox_id: z
    .string()
    .meta({ description: 'sbx- and 12 hex digits', example: 'sbx-0123456789ab' }),
});

export function createSandboxBody(caps: ConfigCaps) {
  return z.object({ user_id: userId, config: sandboxConfig(caps).default({}) });
}

export function extendBody(caps: ConfigCaps) {
  return z.object({ ttl_seconds: ttlSeconds(caps) });
}

export const MAX_PATH_LENGTH = 4096;

export const absolutePath = z
  .string()
  .max(MAX_PATH_LENGTH)
  .refine((path) => path.startsWith('/'), 'must be an absolute path, starting with /')
  .refine((path) => !path.includes('\0'), 'must not contain NUL');

function commandText(maxCommandLength: number) {
  return (
    z
      .string()
      .min(1)
      .max(maxCommandLength)
      .refine((command) => command.trim().length > 0, 'must not be blank')
      // A process's arguments end at a NUL: such a command could never run as written.
      .refine((command) => !command.includes('\0'), 'must not contain NUL')
  );
}

export const commandUser = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a Linux user name')
  .default(DEFAULT_EXEC_USER);

const commandCwd = absolutePath
  .optional()
  .meta({ description: 'Absolute; by default where the last finished command ended' });

const commandEnv = envVars
  .optional()
  .meta({ description: "Variables for this command, over the sandbox's own" });

export function execBody(maxCommandLength: number) {
  return z.object({
    command: commandText(maxCommandLength),
    timeout: z
      .number()
      .int()
      .min(1)
      .max(MAX_EXEC_TIMEOUT_SECONDS)
      .optional()
      .meta({ description: 'Seconds; defaults to MATRX_COMMAND_TIMEOUT_SECONDS' }),
    user: commandUser,
    cwd: commandCwd,
    env: commandEnv,
    stdin: z
      .string()
      .max(maxCommandLength)
      .optional()
      .meta({ description: "The command's standard input; without it, empty" }),
  });
}

export const processPath = sandboxIdPath.extend({
  process_id: z
    .string()
    .meta({ description: 'proc- and 12 hex digits', example: 'proc-0123456789ab' }),
});

export function startProcessBody(maxCommandLength: number) {
  return z.object({
    command: commandText(maxCommandLength),
    cwd: commandCwd,
    env: commandEnv,
    user: commandUser,
    timeout: z
      .number()
      .int()
      .min(1)
      .max(MAX_PROCESS_TIMEOUT_SECONDS)
      .optional()
      .meta({ description: 'Seconds; without it the process runs until it ends or is killed' }),
  });
}

/** A byte offset in a query: digits only, as many as a safe integer surely holds. */
const byteOffset = z
  .string()
  .regex(/^[0-9]{1,15}$/, 'must be a whole number of bytes, 0 or more')
  .default('0')
  .transform(Number);

export const outputQuery = z.object({
  stdout_offset: byteOffset.meta({ description: 'Bytes of stdout already read' }),
  stderr_offset: byteOffset.meta({ description: 'Bytes of stderr already read' }),
  wait: z
    .string()
    .regex(/^[0-9]+(\.[0-9]+)?$/, `must be a number of seconds, 0 to ${MAX_OUTPUT_WAIT_SECONDS}`)
    .default('0')
    .transform(Number)
    .pipe(z.number().max(MAX_OUTPUT_WAIT_SECONDS))
    .meta({ description: 'Seconds to wait for new output or the end; 0 answers at once' }),
});

export function stdinBody(maxCommandLength: number) {
  return z.object({
    data: z.string().max(maxCommandLength),
    eof: z.boolean().default(false).meta({ description: 'true: close stdin after the data' }),
  });
}

export const killQuery = z.object({
  signal: z
    .enum(['TERM', 'KILL'])
    .default('TERM')
    .meta({ description: 'TERM: KILL follows after 5 s if it is still there' }),
});

export const listQuery = z.object({ user_id: userId.optional() });

export const deleteQuery = z.object({
  graceful: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((value) => value === 'true' || value === '1'),
});

export const completeBody = z.object({ result: z.unknown().optional() });

export const errorBody = z.object({
  error: z.string().min(1),
  details: z.record(z.string(), z.unknown()).default({}),
});

/**
 * Response schemas are strict: a field the API sends and the schema lacks fails the integration
 * run's check of every answer (tests/support/contract.ts), and /openapi.json says so.
 */
export const sandboxResponse = z.strictObject({
  sandbox_id: z.string(),
  user_id: z.string(),
  status: z.enum(SANDBOX_STATUSES),
  container_id: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  hot_path: z.string(),
  cold_path: z.string(),
  host_id: z.string().meta({ description: 'The host whose Docker engine runs the sandbox' }),
  last_heartbeat_at: z.string().nullable(),
  last_error: z.string().nullable(),
  config: z
    .record(z.string(), z.unknown())
    .meta({ description: 'As given at create, each env value shown as ***' }),
  template: z.string(),
  ttl_seconds: z.number().int(),
  expires_at: z.string(),
  idle_timeout_seconds: z.number().int(),
  last_activity_at: z
    .string()
    .meta({ description: 'Its last command (up to its timeout while it runs), else its creation' }),
  cold_tier: z.enum(['mounted', 'unavailable']).nullable().meta({
    description:
      "mounted: /data/cold is the user's users/<id>/cold/ prefix in S3; unavailable: a directory of the container (see /health cold); null until it is set up",
  }),
});

export const sandboxListResponse = z.strictObject({
  sandboxes: z.array(sandboxResponse),
  total: z.number().int(),
});

export const execResponse = z.strictObject({
  exit_code: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  timed_out: z.boolean(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  cwd: z.string().meta({ description: 'The working directory when the command ended' }),
  duration_ms: z.number().int().meta({ description: 'How long the command ran' }),
});

export const processResponse = z.strictObject({
  process_id: z.string(),
  command: z.string(),
  user: z.string(),
  cwd: z.string(),
  status: z.enum(PROCESS_STATUSES),
  exit_code: z.number().int().nullable().meta({ description: 'null while it runs' }),
  started_at: z.string(),
  ended_at: z.string().nullable(),
});

export const processListResponse = z.strictObject({ processes: z.array(processResponse) });

export const processOutputResponse = z.strictObject({
  stdout: z.string(),
  stderr: z.string(),
  stdout_offset: z.number().int().meta({ description: 'Where to read stdout from next' }),
  stderr_offset: z.number().int().meta({ description: 'Where to read stderr from next' }),
  status: z.enum(PROCESS_STATUSES),
  exit_code: z.number().int().nullable(),
});

const dependencyHealth = {
  reachable: z.boolean(),
  latency_ms: z.number(),
  error: z.string().optional(),
};

export const healthResponse = z.strictObject({
  status: z.enum(['healthy', 'degraded']),
  active_sandboxes: z.number().int(),
  uptime_seconds: z.number().int(),
  host_id: z.string(),
  docker: z.strictObject(dependencyHealth),
  registry: z.strictObject({ store: z.enum(['memory', 'postgres']), ...dependencyHealth }),
  storage: z.strictObject({ configured: z.boolean(), ...dependencyHealth }),
  channels: z
    .strictObject({
      open: z.number().int(),
      fallback: z.number().int(),
      direct: z.number().int(),
    })
    .meta({
      description:
        'Command channels open now; sandboxes whose channel could not start; channels that skip the engine',
    }),
  pool: z
    .strictObject({ target: z.number().int(), ready: z.number().int() })
    .meta({ description: 'Warm pool: its size (MATRX_WARM_POOL_SIZE), containers ready now' }),
  cold: z
    .strictObject({
      available: z.boolean(),
      reason: z.string().optional(),
      mounted_users: z.number().int(),
    })
    .meta({
      description:
        "The cold tier on this host: /data/cold as each user's S3 prefix (rclone, FUSE), or why not",
    }),
  disk: z
    .strictObject({
      mode: z.enum(['quota', 'measured', 'unknown']),
      limit_bytes: z.number().int(),
    })
    .meta({
      description:
        "How each sandbox's disk limit is held: by the engine (quota) or measured by the service",
    }),
});

export const healthQuery = z.object({
  strict: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((value) => value === 'true' || value === '1')
    .describe('true: answer 503 when degraded, for load balancers'),
});

export const rootResponse = z.strictObject({
  service: z.string(),
  version: z.string(),
  docs: z.string(),
});

export const heartbeatResponse = z.strictObject({
  acknowledged: z.literal(true),
  sandbox_id: z.string(),
});

/** The sandbox's status once shutdown was asked for: a sandbox that had already ended keeps its. */
const endingStatus = z.enum(['shutting_down', 'stopped', 'expired']);

export const completeResponse = z.strictObject({ status: endingStatus, sandbox_id: z.string() });

export const errorReportResponse = z.strictObject({
  status: endingStatus,
  sandbox_id: z.string(),
  error_received: z.literal(true),
});

export const errorResponse = z.strictObject({ detail: z.string() });

export const validationErrorResponse = z.strictObject({
  detail: z.array(
    z.strictObject({
      loc: z.array(z.union([z.string(), z.number()])),
      msg: z.string(),
      type: z.string(),
    }),
  ),
});

export const userIdPath = z.object({ user_id: userId });

export const tierQuery = z.object({ tier: z.enum(['hot', 'cold']) });

const tierUsage = z.strictObject({
  total_size_bytes: z.number().int(),
  total_objects: z.number().int(),
});

export const storageUsageResponse = z.strictObject({
  user_id: z.string(),
  hot: tierUsage,
  cold: tierUsage,
});

export const storageDeletedResponse = z.strictObject({
  user_id: z.string(),
  tier: z.enum(['hot', 'cold']),
  deleted_objects: z.number().int(),
});
