import type { Sandbox } from './domain/sandbox.js';
import { maskedConfig } from './domain/sandboxConfig.js';
import type { StorageUsage, Tier, TierUsage } from './domain/storage.js';
import type { FileEntry, ProcessInfo, ProcessOutput, SearchResult } from './ports.js';
import type { DependencyHealth, Health } from './service/health.js';
import type { PassSummary } from './service/reconciler.js';
import type { ExecOutcome } from './service/sandboxService.js';

/**
 * The one place domain objects become the shapes the API sends (docs/API.md, snake_case) and the
 * reconciler logs. Services return domain types; handlers and log lines map them here.
 */

export function sandboxWire(sandbox: Sandbox) {
  return {
    sandbox_id: sandbox.sandboxId,
    user_id: sandbox.userId,
    status: sandbox.status,
    container_id: sandbox.containerId,
    created_at: sandbox.createdAt.toISOString(),
    updated_at: sandbox.updatedAt.toISOString(),
    hot_path: sandbox.hotPath,
    cold_path: sandbox.coldPath,
    host_id: sandbox.hostId,
    last_heartbeat_at: sandbox.lastHeartbeatAt?.toISOString() ?? null,
    last_error: sandbox.lastError,
    config: maskedConfig(sandbox.config),
    template: sandbox.template,
    ttl_seconds: sandbox.ttlSeconds,
    expires_at: sandbox.expiresAt.toISOString(),
    idle_timeout_seconds: sandbox.idleTimeoutSeconds,
    last_activity_at: sandbox.lastActivityAt.toISOString(),
    cold_tier: sandbox.coldTier,
  };
}

export type WireSandbox = ReturnType<typeof sandboxWire>;

export function sandboxListWire(sandboxes: Sandbox[]) {
  return { sandboxes: sandboxes.map(sandboxWire), total: sandboxes.length };
}

/** What `/complete` and `/error` answer: the sandbox is on its way out. */
export function shutdownWire(sandbox: Sandbox, errorReceived?: true) {
  return {
    status: sandbox.status,
    sandbox_id: sandbox.sandboxId,
    ...(errorReceived && { error_received: true }),
  };
}

export function heartbeatWire(sandbox: Sandbox) {
  return { acknowledged: true, sandbox_id: sandbox.sandboxId };
}

export function execWire(result: ExecOutcome) {
  return {
    exit_code: result.exitCode,
    stdout: result.stdout,
    stderr: result.stderr,
    timed_out: result.timedOut,
    stdout_truncated: result.stdoutTruncated,
    stderr_truncated: result.stderrTruncated,
    cwd: result.cwd,
    duration_ms: result.durationMs,
  };
}

export function processWire(process: ProcessInfo) {
  return {
    process_id: process.processId,
    command: process.command,
    user: process.user,
    cwd: process.cwd,
    status: process.status,
    exit_code: process.exitCode,
    started_at: process.startedAt.toISOString(),
    ended_at: process.endedAt?.toISOString() ?? null,
  };
}

export function processListWire(processes: ProcessInfo[]) {
  return { processes: processes.map(processWire) };
}

export function processOutputWire(output: ProcessOutput) {
  return {
    stdout: output.stdout,
    stderr: output.stderr,
    stdout_offset: output.stdoutOffset,
    stderr_offset: output.stderrOffset,
    status: output.status,
    exit_code: output.exitCode,
  };
}

function dependencyWire(health: DependencyHealth) {
  return {
    reachable: health.reachable,
    latency_ms: health.latencyMs,
    ...(health.error !== undefined && { error: health.error }),
  };
}

export function healthWire(health: Health) {
  return {
    status: health.status,
    active_sandboxes: health.activeSandboxes,
    uptime_seconds: health.uptimeSeconds,
    host_id: health.hostId,
    docker: dependencyWire(health.docker),
    registry: { store: health.registry.store, ...dependencyWire(health.registry) },
    storage: { configured: health.storage.configured, ...dependencyWire(health.storage) },
    channels: {
      open: health.channels.open,
      fallback: health.channels.fallback,
      direct: health.channels.direct,
    },
    pool: { target: health.pool.target, ready: health.pool.ready },
    disk: { mode: health.disk.mode, limit_bytes: health.disk.limitBytes },
    cold: {
      available: health.cold.available,
      ...(health.cold.reason !== undefined && { reason: health.cold.reason }),
      mounted_users: health.cold.mountedUsers,
    },
  };
}

function tierUsageWire(usage: TierUsage) {
  return { total_size_bytes: usage.totalSizeBytes, total_objects: usage.totalObjects };
}

export function storageUsageWire(userId: string, usage: StorageUsage) {
  return { user_id: userId, hot: tierUsageWire(usage.hot), cold: tierUsageWire(usage.cold) };
}

export function storageDeletedWire(userId: string, tier: Tier, deleted: number) {
  return { user_id: userId, tier, deleted_objects: deleted };
}

export function passSummaryWire(summary: PassSummary) {
  return {
    outcome: summary.outcome,
    ...(summary.reason !== undefined && { reason: summary.reason }),
    containers: summary.containers,
    rows: summary.rows,
    skipped_young: summary.skippedYoung,
    skipped_in_flight: summary.skippedInFlight,
    actions: summary.actions,
    failed: summary.failed,
    duration_ms: summary.durationMs,
  };
}

export function fileEntryWire(entry: FileEntry) {
  return {
    path: entry.path,
    name: entry.name,
    type: entry.type,
    size: entry.size,
    mode: entry.mode,
    modified_at: entry.modifiedAt.toISOString(),
    ...(entry.target !== undefined && { target: entry.target }),
  };
}

export function fileListWire(path: string, entries: FileEntry[]) {
  return { path, entries: entries.map(fileEntryWire) };
}

export function searchWire(result: SearchResult) {
  return { matches: result.matches, truncated: result.truncated, engine: result.engine };
}
