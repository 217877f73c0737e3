import { randomBytes } from 'node:crypto';

export const SANDBOX_STATUSES = [
  'creating',
  'starting',
  'ready',
  'running',
  'shutting_down',
  'stopped',
  'failed',
  'expired',
] as const;

export type SandboxStatus = (typeof SANDBOX_STATUSES)[number];

/** The lifecycle as data: every allowed move, and nothing else. */
export const ALLOWED_TRANSITIONS: Readonly<Record<SandboxStatus, readonly SandboxStatus[]>> = {
  creating: ['starting', 'failed', 'shutting_down'],
  starting: ['ready', 'failed', 'shutting_down'],
  ready: ['running', 'shutting_down', 'failed'],
  running: ['shutting_down', 'failed'],
  shutting_down: ['stopped', 'expired', 'failed'],
  failed: ['shutting_down'],
  stopped: [],
  expired: [],
};

export const ACTIVE_STATUSES: readonly SandboxStatus[] = ['starting', 'ready', 'running'];
/** A request of this process or another is still making the sandbox: only it may move it on. */
export const PROVISIONING_STATUSES: readonly SandboxStatus[] = ['creating', 'starting'];
/** The statuses in which a sandbox still has work to do; terminal rows are history. */
export const UNFINISHED_STATUSES: readonly SandboxStatus[] = [
  'creating',
  'starting',
  'ready',
  'running',
  'shutting_down',
];
export const EXEC_STATUSES: readonly SandboxStatus[] = ['ready', 'running'];
export const TERMINAL_STATUSES: readonly SandboxStatus[] = ['stopped', 'expired'];

export function canTransition(from: SandboxStatus, to: SandboxStatus): boolean {
  return ALLOWED_TRANSITIONS[from].includes(to);
}

export const HOT_PATH = '/home/agent';
/** Who runs a command when the caller names no one: the sandbox image's own user. */
export const DEFAULT_EXEC_USER = 'agent';
export const COLD_PATH = '/data/cold';
/** The image's `agent` (the contract's uid 1000): owner of what the sandbox sees in COLD_PATH. */
export const AGENT_UID = 1000;
export const AGENT_GID = 1000;

/** The labels every sandbox container carries, by which the reconciler finds them. */
export const SANDBOX_ID_LABEL = 'matrx.sandbox_id';
export const USER_ID_LABEL = 'matrx.user_id';
export const CREATED_AT_LABEL = 'matrx.created_at';
export const HOST_ID_LABEL = 'matrx.host_id';
/** Read back when a memory registry adopts the container after a restart. */
export const TEMPLATE_LABEL = 'matrx.template';
export const TTL_LABEL = 'matrx.ttl_seconds';
export const IDLE_LABEL = 'matrx.idle_timeout_seconds';

export const SANDBOX_ID_PATTERN = /^sbx-[0-9a-f]{12}$/;
/** The first character a letter or digit: `.` and `..` would be path segments in S3 keys. */
export const USER_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$/;

export function newSandboxId(): string {
  return `sbx-${randomBytes(6).toString('hex')}`;
}

/**
 * Whether /data/cold shows the user's `users/<id>/cold/` prefix (`mounted`), or is a directory of
 * the container whose files end with it (`unavailable`: the host cannot mount, see /health).
 */
export type ColdTierState = 'mounted' | 'unavailable';

export interface Sandbox {
  sandboxId: string;
  userId: string;
  status: SandboxStatus;
  containerId: string | null;
  createdAt: Date;
  updatedAt: Date;
  hotPath: string;
  coldPath: string;
  config: Record<string, unknown>;
  /** The host whose Docker engine runs the container; only that host acts on it. */
  hostId: string;
  lastHeartbeatAt: Date | null;
  lastError: string | null;
  /** The template its image came from (`default` unless its config picked another). */
  template: string;
  /** Its time to live, from its create or its last extend. */
  ttlSeconds: number;
  /** When the reconciler ends it as `expired`. */
  expiresAt: Date;
  /** With no activity this long it is ended as `expired`; 0: never. */
  idleTimeoutSeconds: number;
  /**
   * Its last activity: a command's start, up to that command's timeout while it runs, or its end.
   * A heartbeat counts too (`lastHeartbeatAt`).
   */
  lastActivityAt: Date;
  /** Null until its container is set up (and for sandboxes of releases before the cold tier). */
  coldTier: ColdTierState | null;
}

/** How long a sandbox lives when nothing says otherwise: MATRX_MAX_SESSION_DURATION_SECONDS's default. */
export const DEFAULT_TTL_SECONDS = 7200;

export interface Lifetime {
  template: string;
  ttlSeconds: number;
  idleTimeoutSeconds?: number;
}

/** Since when a sandbox has been idle: its last command or heartbeat, else its creation. */
export function idleSince(sandbox: Sandbox): Date {
  const heartbeat = sandbox.lastHeartbeatAt?.getTime() ?? 0;
  return new Date(Math.max(sandbox.lastActivityAt.getTime(), heartbeat));
}

export function expiryOf(from: Date, ttlSeconds: number): Date {
  return new Date(from.getTime() + ttlSeconds * 1000);
}

export function newSandbox(
  userId: string,
  config: Record<string, unknown>,
  hostId: string,
  now = new Date(),
  lifetime: Lifetime = { template: 'default', ttlSeconds: DEFAULT_TTL_SECONDS },
) {
  const sandbox: Sandbox = {
    sandboxId: newSandboxId(),
    userId,
    status: 'creating',
    containerId: null,
    createdAt: now,
    updatedAt: now,
    hotPath: HOT_PATH,
    coldPath: COLD_PATH,
    config,
    hostId,
    lastHeartbeatAt: null,
    lastError: null,
    template: lifetime.template,
    ttlSeconds: lifetime.ttlSeconds,
    expiresAt: expiryOf(now, lifetime.ttlSeconds),
    idleTimeoutSeconds: lifetime.idleTimeoutSeconds ?? 0,
    lastActivityAt: now,
    coldTier: null,
  };
  return sandbox;
}
