import pg from 'pg';
import {
  type ColdTierState,
  canTransition,
  SANDBOX_STATUSES,
  type Sandbox,
  type SandboxStatus,
} from '../../domain/sandbox.js';
import { ConflictError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { SandboxFilter, SandboxStore, StatusChange, StatusUpdate } from '../../ports.js';
import { loggedCall } from '../callLog.js';
import { toServiceError } from './pgErrors.js';

export interface PoolSettings {
  url: string;
  maxConnections: number;
  connectTimeoutMs: number;
}

/** A hung query must not hang a request: the server cancels any statement past this. */
const STATEMENT_TIMEOUT_MS = 30_000;
/** The first of two advisory lock keys: this service's namespace among the database's locks. */
const LOCK_NAMESPACE = 0x6d747278;

/** One pool per process, bounded, and an idle connection's error is logged, not a crash. */
export function createPool(settings: PoolSettings, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: settings.maxConnections,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: 'matrx-sandbox-orchestrator',
  });
  pool.on('error', (error) => logger.warn('idle Postgres connection failed', { error }));
  return pool;
}

interface SandboxRow {
  sandbox_id: string;
  user_id: string;
  status: SandboxStatus;
  container_id: string | null;
  created_at: Date;
  updated_at: Date;
  hot_path: string | null;
  cold_path: string | null;
  config: Record<string, unknown> | null;
  host_id: string;
  last_heartbeat_at: Date | null;
  last_error: string | null;
  template: string;
  ttl_seconds: number;
  expires_at: Date;
  idle_timeout_seconds: number;
  last_activity_at: Date;
  cold_tier: ColdTierState | null;
}

function fromRow(row: SandboxRow): Sandbox {
  return {
    sandboxId: row.sandbox_id,
    userId: row.user_id,
    status: row.status,
    containerId: row.container_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    hotPath: row.hot_path ?? '',
    coldPath: row.cold_path ?? '',
    config: row.config ?? {},
    hostId: row.host_id,
    lastHeartbeatAt: row.last_heartbeat_at,
    lastError: row.last_error,
    template: row.template,
    ttlSeconds: row.ttl_seconds,
    expiresAt: row.expires_at,
    idleTimeoutSeconds: row.idle_timeout_seconds,
    lastActivityAt: row.last_activity_at,
    coldTier: row.cold_tier,
  };
}

/** The statuses a sandbox may be in for a move to `to` to be allowed (staying put included). */
function allowedFrom(to: SandboxStatus): SandboxStatus[] {
  return SANDBOX_STATUSES.filter((from) => from === to || canTransition(from, to));
}

/** The registry in Postgres: raw, parameterised SQL on one pool. */
export class PostgresSandboxStore implements SandboxStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
    private readonly slowCallMs: number,
  ) {}

  async #query<R extends pg.QueryResultRow>(
    operation: string,
    sql: string,
    params: unknown[],
  ): Promise<R[]> {
    return loggedCall(
      this.logger,
      'postgres',
      { operation, target: {}, slowMs: this.slowCallMs },
      async () => {
        try {
          return (await this.pool.query<R>(sql, params)).rows;
        } catch (error) {
          throw toServiceError(error, operation);
        }
      },
    );
  }

  async save(sandbox: Sandbox): Promise<void> {
    await this.#query(
      'save',
      `INSERT INTO sandboxes (sandbox_id, user_id, status, container_id, created_at, updated_at,
         hot_path, cold_path, config, host_id, last_heartbeat_at, last_error, template,
         ttl_seconds, expires_at, idle_timeout_seconds, last_activity_at, cold_tier)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
       ON CONFLICT (sandbox_id) DO UPDATE SET user_id = $2, status = $3, container_id = $4,
         created_at = $5, updated_at = $6, hot_path = $7, cold_path = $8, config = $9,
         host_id = $10, last_heartbeat_at = $11, last_error = $12, template = $13,
         ttl_seconds = $14, expires_at = $15, idle_timeout_seconds = $16, last_activity_at = $17,
         cold_tier = $18`,
      [
        sandbox.sandboxId,
        sandbox.userId,
        sandbox.status,
        sandbox.containerId,
        sandbox.createdAt,
        sandbox.updatedAt,
        sandbox.hotPath,
        sandbox.coldPath,
        JSON.stringify(sandbox.config),
        sandbox.hostId,
        sandbox.lastHeartbeatAt,
        sandbox.lastError,
        sandbox.template,
        sandbox.ttlSeconds,
        sandbox.expiresAt,
        sandbox.idleTimeoutSeconds,
        sandbox.lastActivityAt,
        sandbox.coldTier,
      ],
    );
  }

  async get(sandboxId: string): Promise<Sandbox | null> {
    const rows = await this.#query<SandboxRow>(
      'get',
      'SELECT * FROM sandboxes WHERE sandbox_id = $1',
      [sandboxId],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async list(filter: SandboxFilter = {}): Promise<Sandbox[]> {
    const { where, params } = whereOf(filter);
    const rows = await this.#query<SandboxRow>(
      'list',
      `SELECT * FROM sandboxes ${where} ORDER BY created_at, sandbox_id`,
      params,
    );
    return rows.map(fromRow);
  }

  async count(filter: SandboxFilter = {}): Promise<number> {
    const { where, params } = whereOf(filter);
    const rows = await this.#query<{ count: string }>(
      'count',
      `SELECT count(*) FROM sandboxes ${where}`,
      params,
    );
    return Number(rows[0]?.count ?? 0);
  }

  async delete(sandboxId: string): Promise<void> {
    await this.#query('delete', 'DELETE FROM sandboxes WHERE sandbox_id = $1', [sandboxId]);
  }

  async updateStatus(sandboxId: string, change: StatusChange): Promise<StatusUpdate | null> {
    // One statement: the row is locked, its status checked against the lifecycle table and moved.
    const rows = await this.#query<SandboxRow & { previous_status: SandboxStatus }>(
      'update_status',
      `WITH previous AS (
         SELECT sandbox_id, status FROM sandboxes WHERE sandbox_id = $1 FOR UPDATE
       )
       UPDATE sandboxes AS s SET status = $2,
         container_id = CASE WHEN $3 THEN $4 ELSE s.container_id END,
         last_error = CASE WHEN $5 THEN $6 ELSE s.last_error END,
         cold_tier = COALESCE($8, s.cold_tier),
         updated_at = NOW()
       FROM previous
       WHERE s.sandbox_id = previous.sandbox_id AND previous.status = ANY($7)
       RETURNING s.*, previous.status AS previous_status`,
      [
        sandboxId,
        change.status,
        change.containerId !== undefined,
        change.containerId ?? null,
        change.lastError !== undefined,
        change.lastError ?? null,
        allowedFrom(change.status),
        change.coldTier ?? null,
      ],
    );
    const row = rows[0];
    if (row) return { sandbox: fromRow(row), previous: row.previous_status };
    const current = await this.get(sandboxId);
    if (!current) return null;
    throw new ConflictError(
      `Sandbox ${sandboxId} cannot move from ${current.status} to ${change.status}`,
    );
  }

  async recordError(sandboxId: string, lastError: string): Promise<boolean> {
    const rows = await this.#query<{ sandbox_id: string }>(
      'record_error',
      'UPDATE sandboxes SET last_error = $2, updated_at = NOW() WHERE sandbox_id = $1 RETURNING sandbox_id',
      [sandboxId, lastError],
    );
    return rows.length > 0;
  }

  async extend(sandboxId: string, ttlSeconds: number, statuses: readonly SandboxStatus[]) {
    const rows = await this.#query<SandboxRow>(
      'extend',
      `UPDATE sandboxes SET ttl_seconds = $2::integer,
         expires_at = NOW() + make_interval(secs => $2::integer),
         updated_at = NOW()
       WHERE sandbox_id = $1 AND status = ANY($3) RETURNING *`,
      [sandboxId, ttlSeconds, statuses],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async touchActivity(sandboxId: string, at: Date): Promise<void> {
    await this.#query(
      'touch_activity',
      'UPDATE sandboxes SET last_activity_at = $2 WHERE sandbox_id = $1',
      [sandboxId, at],
    );
  }

  async touchHeartbeat(sandboxId: string, hostId: string, at: Date): Promise<Sandbox | null> {
    const rows = await this.#query<SandboxRow>(
      'touch_heartbeat',
      'UPDATE sandboxes SET last_heartbeat_at = $3 WHERE sandbox_id = $1 AND host_id = $2 RETURNING *',
      [sandboxId, hostId, at],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async withExclusiveLock(name: string, work: () => Promise<void>): Promise<boolean> {
    const client = await this.pool.connect().catch((error: unknown) => {
      throw toServiceError(error, 'lock');
    });
    // A connection that failed goes back broken, so the pool drops it and the server its lock.
    let broken: Error | undefined;
    try {
      const { rows } = await client
        .query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [
          LOCK_NAMESPACE,
          name,
        ])
        .catch((error: unknown) => {
          broken = error as Error;
          throw toServiceError(error, 'lock');
        });
      if (!rows[0]?.locked) return false;
      try {
        await work();
      } finally {
        await client
          .query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_NAMESPACE, name])
          .catch((error: unknown) => {
            broken = error as Error;
          });
      }
      return true;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The WHERE clause of a filter, with its values as parameters. */
function whereOf(filter: SandboxFilter): { where: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (column: string, operator: string, value: unknown) => {
    params.push(value);
    conditions.push(`${column} ${operator.replace('?', `$${params.length}`)}`);
  };
  if (filter.userId !== undefined) add('user_id', '= ?', filter.userId);
  if (filter.hostId !== undefined) add('host_id', '= ?', filter.hostId);
  if (filter.statuses !== undefined) add('status', '= ANY(?)', filter.statuses);
  return { where: conditions.length ? `WHERE ${conditions.join(' AND ')}` : '', params };
}
