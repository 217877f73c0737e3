import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@aws-lambda-powertools/logger';
import { MemorySandboxStore } from '../../lib/adapters/memory/memorySandboxStore.js';
import {
  assertSchemaCurrent,
  migrate,
  migrationFiles,
} from '../../lib/adapters/postgres/migrations.js';
import {
  createPool,
  PostgresSandboxStore,
} from '../../lib/adapters/postgres/postgresSandboxStore.js';
import { newSandbox, type Sandbox } from '../../lib/domain/sandbox.js';
import { ConflictError, UnavailableError } from '../../lib/errors.js';
import type { SandboxStore } from '../../lib/ports.js';
import { freePort } from '../../scripts/serverProcess.js';
import { testDatabase, type TestDatabase } from '../support/postgres.js';

const logger = new Logger({ logLevel: 'CRITICAL' });
let database: TestDatabase;
let postgresStore: PostgresSandboxStore;

beforeAll(async () => {
  database = await testDatabase('contract');
  postgresStore = new PostgresSandboxStore(
    createPool({ url: database.url, maxConnections: 5, connectTimeoutMs: 2000 }, logger),
    logger,
    1000,
  );
});

afterAll(async () => {
  await postgresStore?.close();
  await database?.drop();
});

const stores: [string, () => SandboxStore][] = [
  ['memory', () => new MemorySandboxStore({ stoppedRetentionMs: 60_000, maxStopped: 100 })],
  ['postgres', () => postgresStore],
];

let counter = 0;
/** Distinct users per test, so the shared Postgres table needs no cleaning between tests. */
function sandboxOf(user: string, host = 'host-a', createdAt = new Date()): Sandbox {
  counter += 1;
  // Postgres keeps microseconds, JavaScript milliseconds: whole milliseconds round-trip exactly.
  return newSandbox(`${user}-${counter}`, { cpu: 1, tags: ['x'] }, host, createdAt);
}

describe.each(stores)('SandboxStore contract: %s', (_name, storeOf) => {
  it('saves and gets every field back', async () => {
    const store = storeOf();
    const sandbox = { ...sandboxOf('fields'), lastHeartbeatAt: new Date(), lastError: 'boom' };
    await store.save(sandbox);
    expect(await store.get(sandbox.sandboxId)).toEqual(sandbox);
    expect(await store.get('sbx-000000000000')).toBeNull();
  });

  it('lists oldest first, and counts, filtered by user, host and status', async () => {
    const store = storeOf();
    const t = Date.now();
    const older = sandboxOf('list', 'host-a', new Date(t - 2000));
    const newer = { ...sandboxOf('list', 'host-b', new Date(t - 1000)), userId: older.userId };
    await store.save(newer);
    await store.save(older);
    const mine = await store.list({ userId: older.userId });
    expect(mine.map((s) => s.sandboxId)).toEqual([older.sandboxId, newer.sandboxId]);
    const onB = await store.list({ userId: older.userId, hostId: 'host-b' });
    expect(onB.map((s) => s.sandboxId)).toEqual([newer.sandboxId]);
    await store.updateStatus(older.sandboxId, { status: 'starting' });
    const starting = await store.list({ userId: older.userId, statuses: ['starting', 'ready'] });
    expect(starting.map((s) => s.sandboxId)).toEqual([older.sandboxId]);
    expect((await store.list()).length).toBeGreaterThanOrEqual(2);
    expect(await store.count({ userId: older.userId })).toBe(2);
    expect(await store.count({ userId: older.userId, hostId: 'host-b' })).toBe(1);
    expect(await store.count({ userId: older.userId, statuses: ['starting', 'ready'] })).toBe(1);
    expect(await store.count({ userId: 'nobody-at-all' })).toBe(0);
  });

  it('returns copies: changing one does not change the registry', async () => {
    const store = storeOf();
    const sandbox = sandboxOf('copy');
    await store.save(sandbox);
    const copy = await store.get(sandbox.sandboxId);
    if (copy) copy.status = 'running';
    expect((await store.get(sandbox.sandboxId))?.status).toBe('creating');
  });

  it('moves status along the lifecycle table only, saying where it came from', async () => {
    const store = storeOf();
    const sandbox = sandboxOf('move');
    await store.save(sandbox);
    const moved = await store.updateStatus(sandbox.sandboxId, {
      status: 'starting',
      containerId: 'c1',
    });
    expect(moved?.previous).toBe('creating');
    expect(moved?.sandbox).toMatchObject({ status: 'starting', containerId: 'c1' });
    const same = await store.updateStatus(sandbox.sandboxId, {
      status: 'starting',
      lastError: 'x',
    });
    expect(same?.sandbox).toMatchObject({ status: 'starting', containerId: 'c1', lastError: 'x' });
    await expect(store.updateStatus(sandbox.sandboxId, { status: 'stopped' })).rejects.toThrow(
      ConflictError,
    );
    expect((await store.get(sandbox.sandboxId))?.status).toBe('starting');
    expect(await store.updateStatus('sbx-000000000000', { status: 'ready' })).toBeNull();
  });

  it('concurrent moves to two final states: exactly one wins', async () => {
    const store = storeOf();
    const sandbox = sandboxOf('race');
    await store.save({ ...sandbox, status: 'shutting_down' });
    const results = await Promise.allSettled([
      store.updateStatus(sandbox.sandboxId, { status: 'stopped' }),
      store.updateStatus(sandbox.sandboxId, { status: 'expired' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  });

  it('records heartbeats, and deletes', async () => {
    const store = storeOf();
    const sandbox = sandboxOf('beat');
    await store.save(sandbox);
    const at = new Date();
    expect(await store.touchHeartbeat(sandbox.sandboxId, 'another-host', at)).toBeNull();
    expect((await store.get(sandbox.sandboxId))?.lastHeartbeatAt).toBeNull();
    const touched = await store.touchHeartbeat(sandbox.sandboxId, sandbox.hostId, at);
    expect(touched?.lastHeartbeatAt).toEqual(at);
    expect(await store.touchHeartbeat('sbx-000000000000', sandbox.hostId, at)).toBeNull();
    await store.delete(sandbox.sandboxId);
    expect(await store.get(sandbox.sandboxId)).toBeNull();
  });

  it('extends only a sandbox in one of the statuses asked, from now', async () => {
    const store = storeOf();
    const sandbox = { ...sandboxOf('extend'), status: 'ready' as const };
    await store.save(sandbox);
    const before = Date.now();
    const extended = await store.extend(sandbox.sandboxId, 600, ['ready', 'running']);
    expect(extended).toMatchObject({ ttlSeconds: 600 });
    expect(extended?.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 599_000);
    expect(await store.extend(sandbox.sandboxId, 600, ['running'])).toBeNull();
    expect(await store.extend('sbx-000000000000', 600, ['ready'])).toBeNull();
  });

  it('records activity, and keeps the idle timeout', async () => {
    const store = storeOf();
    const sandbox = { ...sandboxOf('activity'), idleTimeoutSeconds: 120 };
    await store.save(sandbox);
    const at = new Date(Date.now() + 60_000);
    await store.touchActivity(sandbox.sandboxId, at);
    expect(await store.get(sandbox.sandboxId)).toMatchObject({
      idleTimeoutSeconds: 120,
      lastActivityAt: at,
    });
  });

  it('an exclusive lock lets one holder in at a time, and is free again after', async () => {
    const store = storeOf();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = store.withExclusiveLock('contract-lock', () => held);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await store.withExclusiveLock('contract-lock', async () => undefined)).toBe(false);
    expect(await store.withExclusiveLock('other-lock', async () => undefined)).toBe(true);
    release();
    expect(await first).toBe(true);
    expect(await store.withExclusiveLock('contract-lock', async () => undefined)).toBe(true);
  });
});

describe('Postgres schema and availability', () => {
  it('migrate applies every file once and is safe to run again, even at once', async () => {
    const fresh = await testDatabase('migrate', { migrated: false });
    try {
      await expect(assertSchemaCurrent(fresh.pool)).rejects.toThrow(/run npm run migrate/);
      const [first, second] = await Promise.all([migrate(fresh.pool), migrate(fresh.pool)]);
      expect([...first, ...second].sort()).toEqual(migrationFiles());
      expect(await migrate(fresh.pool)).toEqual([]);
      await expect(assertSchemaCurrent(fresh.pool)).resolves.toBeUndefined();
    } finally {
      await fresh.drop();
    }
  });

  it('a database that does not answer is a 503-class error naming Postgres, quickly', async () => {
    const url = `postgres://postgres@127.0.0.1:${await freePort()}/nothing`;
    const store = new PostgresSandboxStore(
      createPool({ url, maxConnections: 2, connectTimeoutMs: 500 }, logger),
      logger,
      1000,
    );
    try {
      const error = await store.list().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnavailableError);
      expect(error).toMatchObject({ dependency: 'Postgres' });
    } finally {
      await store.close();
    }
  });
});
