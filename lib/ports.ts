import type { Readable } from 'node:stream';
import type { Bytes } from './domain/bytes.js';
import type { ClaimLimits, SandboxIdentity } from './domain/pool.js';
import type { ColdTierState, Sandbox, SandboxStatus } from './domain/sandbox.js';

export interface StatusChange {
  status: SandboxStatus;
  containerId?: string | null;
  lastError?: string | null;
  coldTier?: ColdTierState;
}

export interface SandboxFilter {
  userId?: string;
  hostId?: string;
  statuses?: readonly SandboxStatus[];
}

export interface StatusUpdate {
  sandbox: Sandbox;
  previous: SandboxStatus;
}

/** The registry of sandboxes. Implementations: memory (default) and Postgres. */
export interface SandboxStore {
  save(sandbox: Sandbox): Promise<void>;
  get(sandboxId: string): Promise<Sandbox | null>;
  /** Oldest first. */
  list(filter?: SandboxFilter): Promise<Sandbox[]>;
  /** How many `list` would return, without reading them. */
  count(filter?: SandboxFilter): Promise<number>;
  delete(sandboxId: string): Promise<void>;
  /**
   * Moves a sandbox to a new status if the lifecycle table allows it, in one atomic step; returns
   * the updated sandbox and the status it left, or null when it does not exist. A forbidden move is
   * a ConflictError.
   */
  updateStatus(sandboxId: string, change: StatusChange): Promise<StatusUpdate | null>;
  /** Records why the sandbox's current step failed, its status unchanged; false when it is gone. */
  recordError(sandboxId: string, lastError: string): Promise<boolean>;
  /**
   * Gives a sandbox in one of `statuses` a new TTL from now; null when there is none such (gone,
   * or in another status).
   */
  extend(
    sandboxId: string,
    ttlSeconds: number,
    statuses: readonly SandboxStatus[],
  ): Promise<Sandbox | null>;
  /** Records the sandbox's last activity (see Sandbox.lastActivityAt); gone is no error. */
  touchActivity(sandboxId: string, at: Date): Promise<void>;
  /** Records a heartbeat of a sandbox this host runs; null when there is no such sandbox here. */
  touchHeartbeat(sandboxId: string, hostId: string, at: Date): Promise<Sandbox | null>;
  /**
   * Runs `work` unless another process holds the same lock (then resolves false without running
   * it): one reconcile pass at a time per host.
   */
  withExclusiveLock(name: string, work: () => Promise<void>): Promise<boolean>;
  close(): Promise<void>;
}

export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  cpuLimit: number;
  memoryLimitBytes: number;
  network: string;
  /** A host directory bound at /data/cold (rslave), where the user's cold tier is put later. */
  coldSlot?: string;
}

export type ReadyOutcome = { ready: true } | { ready: false; reason: string };

export interface ExecRequest {
  command: string;
  user: string;
  timeoutSeconds: number;
  maxOutputBytes: number;
  /** Absolute; without it the command starts where the sandbox's previous command ended. */
  cwd?: string;
  /** Merged over the sandbox's environment. */
  env?: Record<string, string>;
  /** Fed to the command; without it stdin is /dev/null. */
  stdin?: string;
  /**
   * An operation of the service's own (a file operation): it starts where the sandbox's commands
   * do, and where it ends does not move the sandbox's cwd.
   */
  keepCwd?: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  timedOut: boolean;
  /** The working directory when the command ended (where it started, if that is unknown). */
  cwd: string;
}

export const PROCESS_STATUSES = ['running', 'exited', 'killed', 'timed_out'] as const;
export type ProcessStatus = (typeof PROCESS_STATUSES)[number];
export type ProcessSignal = 'TERM' | 'KILL';

export interface ProcessStart {
  /** proc- and 12 hex digits, chosen by the caller. */
  processId: string;
  command: string;
  user: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Without it the process runs until it ends, is killed or the sandbox ends. */
  timeoutSeconds?: number;
}

/** A background process, as the sandbox keeps it (state and output live in the container). */
export interface ProcessInfo {
  processId: string;
  command: string;
  user: string;
  cwd: string;
  status: ProcessStatus;
  /** Null while it runs. */
  exitCode: number | null;
  startedAt: Date;
  endedAt: Date | null;
}

export interface OutputRequest {
  /** Byte offsets to read from (an offset before the oldest byte kept reads from that byte). */
  stdoutOffset: number;
  stderrOffset: number;
  /** 0: answer at once; else as soon as there is output past the offsets or the process ends. */
  waitMs: number;
  /** At most this many bytes per stream. */
  maxBytes: number;
}

export interface ProcessOutput {
  stdout: string;
  stderr: string;
  /** Where to read from next. */
  stdoutOffset: number;
  stderrOffset: number;
  status: ProcessStatus;
  exitCode: number | null;
}

/** How the sandboxes' commands reach them: over a channel, or a plain engine exec each. */
export interface ChannelStats {
  /** Channels open now (one per sandbox and user). */
  open: number;
  /** Sandboxes whose commands take the plain engine exec, their channel unable to start. */
  fallback: number;
  /** Of the open channels, those whose requests skip the engine (their own pipes, via /proc). */
  direct: number;
}

/**
 * How MATRX_CONTAINER_DISK_LIMIT is held: `quota`, the engine sizes each container's writable
 * layer (overlay2 on xfs with project quotas, btrfs, zfs); `measured`, the engine cannot, so the
 * service measures the sandboxes and ends one over its limit (DiskWatch).
 */
export type DiskLimitMode = 'quota' | 'measured';

/** A sandbox container as the engine reports it, from its labels and state. */
export interface ObservedContainer {
  containerId: string;
  sandboxId: string;
  userId: string;
  hostId: string | null;
  createdAt: Date | null;
  running: boolean;
  /** From its labels; null for a container of a release that set none. */
  template: string | null;
  ttlSeconds: number | null;
  idleTimeoutSeconds: number;
  /**
   * A claimed pool container: its identity comes from the record its claim wrote, not from its
   * labels. Empty `userId` when that record is missing or fails its check (a claim cut short).
   */
  fromPool: boolean;
  /** It binds a slot at /data/cold: its cold tier was mounted there (and outlives the API). */
  coldSlot: boolean;
}

/** A pool container no sandbox has claimed yet. */
export interface PoolContainer {
  containerId: string;
  name: string;
  hostId: string | null;
  /** What it was made with (POOL_CONFIG_LABEL). */
  configHash: string;
  running: boolean;
}

export interface StartOptions {
  /** A pool container: root's command channel is opened too, for its claim. */
  pool?: boolean;
}

/** The container engine, as the service needs it. Docker is the one implementation. */
export interface ContainerRuntime {
  ping(): Promise<void>;
  /** Ends what the runtime holds open (connections, helpers in containers); not the containers. */
  close(): void;
  /** Every container carrying our labels, running or not, in one call to the engine. */
  listSandboxContainers(): Promise<ObservedContainer[]>;
  create(spec: ContainerSpec): Promise<string>;
  /**
   * Starts the container (calling onStarted once it runs) and resolves once the sandbox is
   * ready, or says why it is not.
   */
  startAndWaitReady(
    containerId: string,
    timeoutMs: number,
    onStarted: () => void,
    options?: StartOptions,
  ): Promise<ReadyOutcome>;
  /** Unclaimed pool containers (POOL_LABEL), running or not. */
  listPoolContainers(): Promise<PoolContainer[]>;
  /** The id of the image a name points to now; a rebuilt image has a new one. */
  imageId(image: string): Promise<string>;
  /**
   * Claims a pool container by renaming it to the sandbox's id, in one atomic engine call;
   * false when it is gone or another claim took it first.
   */
  claimPoolContainer(poolName: string, sandboxId: string): Promise<boolean>;
  /**
   * Makes a claimed pool container the sandbox's: its limits, and the identity record from which
   * its commands get their environment and a restarted service its user. Opens its channel.
   */
  assignSandbox(
    containerId: string,
    identity: SandboxIdentity,
    /** Null: the limits it was made with stay. */
    limits: ClaimLimits | null,
  ): Promise<void>;
  /** The host directory bound at /data/cold of a container; null when it has none. */
  coldSlotOf(containerId: string): Promise<string | null>;
  /** The host directories bound at /data/cold of every container of ours, in any state. */
  coldSlotsInUse(): Promise<Set<string>>;
  exec(containerId: string, request: ExecRequest): Promise<ExecResult>;
  /** Starts a background process; a ConflictError when the id is taken. */
  startProcess(containerId: string, start: ProcessStart): Promise<ProcessInfo>;
  /** Oldest first. */
  listProcesses(containerId: string): Promise<ProcessInfo[]>;
  /** Null when the sandbox has no such process. */
  getProcess(containerId: string, processId: string): Promise<ProcessInfo | null>;
  readProcessOutput(
    containerId: string,
    processId: string,
    request: OutputRequest,
  ): Promise<ProcessOutput | null>;
  /** A ConflictError when the process has ended or its stdin was closed. */
  writeProcessStdin(
    containerId: string,
    processId: string,
    data: string,
    eof: boolean,
  ): Promise<ProcessInfo | null>;
  /** Resolves once the process and everything it started are gone. */
  killProcess(
    containerId: string,
    processId: string,
    signal: ProcessSignal,
  ): Promise<ProcessInfo | null>;
  channelStats(): ChannelStats;
  /** Asked of the engine once, then remembered; throws while the engine cannot be asked. */
  diskLimitMode(): Promise<DiskLimitMode>;
  /**
   * Bytes the container wrote to its writable layer (the home is there too); null when the
   * container is gone.
   */
  diskUsage(containerId: string): Promise<number | null>;
  /** Stops (gracefully within timeoutSeconds, or kills when 0); gone or stopped is success. */
  stop(containerId: string, timeoutSeconds: number): Promise<void>;
  /** Removes the container; already gone is success. */
  remove(containerId: string): Promise<void>;
  /** A tar stream of a folder, read from a running or stopped container. */
  readArchive(containerId: string, path: string): Promise<Readable>;
  /** Paths under a folder that the container added or changed against its image, relative. */
  changedPaths(containerId: string, under: string): Promise<Set<string>>;
  /** Extracts a tar stream into a folder of a created, running or stopped container. */
  writeArchive(containerId: string, path: string, tar: Readable): Promise<void>;
}

export const FILE_TYPES = ['file', 'dir', 'symlink', 'other'] as const;
export type FileType = (typeof FILE_TYPES)[number];

/** A path in a sandbox as `lstat` sees it (a symlink is itself, with its target). */
export interface FileEntry {
  path: string;
  name: string;
  type: FileType;
  size: number;
  /** The permission bits, as 4 octal digits (`0644`). */
  mode: string;
  modifiedAt: Date;
  /** A symlink's target, as it is written. */
  target?: string;
}

export interface SearchQuery {
  /** A Perl-compatible regular expression, matched against the bytes of each line. */
  pattern: string;
  /** A file or a directory searched through. */
  path: string;
  /** Matched against the file's name; with a `/`, against its path under `path`. */
  glob?: string;
  ignoreCase: boolean;
  maxResults: number;
}

export interface SearchMatch {
  path: string;
  line: number;
  text: string;
}

export interface SearchResult {
  matches: SearchMatch[];
  truncated: boolean;
  /** Which tool searched: `rg` where the image has it, `grep` otherwise. */
  engine: string;
}

/**
 * The files of a running sandbox, reached as one of its users: the container's permissions apply.
 * Paths are absolute and normalized. A path that is missing, forbidden or of the wrong kind is a
 * PathError (404, 403, 409); a stopped or gone container the runtime's ConflictError or
 * NotFoundError.
 */
export interface SandboxFiles {
  /**
   * The bytes of a regular file (a large one as a stream, which must be read or destroyed); a
   * PayloadTooLargeError past `maxBytes`.
   */
  read(containerId: string, user: string, path: string, maxBytes: number): Promise<Bytes>;
  /**
   * Replaces the file at once (a reader sees the old or the new bytes, and a write that fails
   * part way leaves the old); parents are made.
   */
  write(
    containerId: string,
    user: string,
    path: string,
    bytes: Bytes,
    mode: number,
  ): Promise<FileEntry>;
  stat(containerId: string, user: string, path: string): Promise<FileEntry>;
  /** What is under the directory, `depth` levels down, in no order. */
  list(containerId: string, user: string, path: string, depth: number): Promise<FileEntry[]>;
  remove(containerId: string, user: string, path: string, recursive: boolean): Promise<void>;
  makeDir(containerId: string, user: string, path: string): Promise<FileEntry>;
  move(
    containerId: string,
    user: string,
    from: string,
    to: string,
    overwrite: boolean,
  ): Promise<FileEntry>;
  search(containerId: string, user: string, query: SearchQuery): Promise<SearchResult>;
  /** A tar of the directory's tree, as the user reads it; a PayloadTooLargeError past maxBytes. */
  readArchive(containerId: string, user: string, path: string, maxBytes: number): Promise<Bytes>;
  /** Extracts a tar into the directory (made when missing), the files the user's. */
  writeArchive(containerId: string, user: string, path: string, tar: Buffer): Promise<void>;
}

export interface StoredObject {
  key: string;
  size: number;
  etag?: string;
}

export interface FetchedObject {
  body: Readable;
  size: number;
  metadata: Record<string, string>;
}

/** One bucket of objects, as the service needs it. S3 (or an S3-compatible server) is the one. */
export interface ObjectStorage {
  readonly bucket: string;
  /** Resolves when the bucket exists and is ours to use; throws UnavailableError otherwise. */
  checkBucket(): Promise<void>;
  /** Every object under the prefix, page after page. */
  list(prefix: string): AsyncIterable<StoredObject>;
  get(key: string): Promise<FetchedObject>;
  /** Streams the body; large bodies go up in parts. */
  put(
    key: string,
    body: Readable | Buffer,
    size: number,
    metadata: Record<string, string>,
  ): Promise<void>;
  /** Deletes the keys (any number), returns how many it deleted. */
  deleteMany(keys: readonly string[]): Promise<number>;
}

export interface ColdSweep {
  /** Slots of containers that are gone, unmounted. */
  slots: number;
  /** Users' binds with no slot left, unmounted. */
  users: number;
  /** Slots of running containers bound again after the bucket's mount died. */
  repaired: number;
}

/**
 * The cold tier's mounts on this host: each user's `users/<id>/cold/` prefix, put into a
 * container's slot (a host directory it binds at /data/cold) while it runs.
 */
export interface ColdMounts {
  /** Null when this host can mount; otherwise why it cannot (asked once, then remembered). */
  unavailableReason(): Promise<string | null>;
  /** The host directory of a slot, empty until `attach` puts a user's prefix there. */
  slotPath(slot: string): string;
  attach(userId: string, slot: string): Promise<void>;
  /** Empties the slot; the user's bind goes with their last slot on this host. */
  detach(slot: string): Promise<void>;
  /** Listings are read from S3 afresh (after a delete that did not go through a mount). */
  refresh(): Promise<void>;
  /**
   * Cleans what no container uses and repairs the rest. `slotsInUse` (host paths of the slots of
   * existing containers) is asked after the mounts are read, never before.
   */
  sweep(slotsInUse: () => Promise<ReadonlySet<string>>): Promise<ColdSweep>;
  mountedUsers(): Promise<number>;
  close(): Promise<void>;
}
