import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { embeddedS3Client, startEmbeddedS3, type EmbeddedS3 } from '../../lib/embeddedS3.js';
import { freePort, startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { docker, sandboxContainers } from '../support/docker.js';
import { testDatabase, type TestDatabase } from '../support/postgres.js';
import { passSummaries, reconcileOnce } from '../support/reconcilerProcess.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';
import { until } from '../support/until.js';

/** The API and the reconciler on a real Postgres, with an S3 of this suite's own. */
let database: TestDatabase;
let s3: EmbeddedS3;
let s3Client: S3Client;
let server: RunningServer;
let env: Record<string, string>;
let workDir: string;
const hostId = `it-reg-${randomBytes(3).toString('hex')}`;

async function startApi(): Promise<RunningServer> {
  return startServer({ logFile: join(workDir, `server-${Date.now()}.log`), env });
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'matrx-registry-'));
  database = await testDatabase('registry');
  s3 = await startEmbeddedS3(join(workDir, 's3'), await freePort());
  s3Client = embeddedS3Client(s3);
  env = {
    ...s3.env,
    // The API's cold-tier mounts are the reconciler's to sweep: one root for both.
    MATRX_COLD_ROOT: join(workDir, 'cold'),
    MATRX_SANDBOX_STORE: 'postgres',
    MATRX_DATABASE_URL: database.url,
    MATRX_HOST_ID: hostId,
    MATRX_DOCKER_NETWORK: 'none',
    MATRX_SHUTDOWN_TIMEOUT_SECONDS: '1',
    // The launcher's own reconciler does its startup pass, then stays out of the way.
    MATRX_RECONCILE_INTERVAL_SECONDS: '3600',
  };
  server = await startApi();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await database?.drop();
  await s3?.close();
  s3Client?.destroy();
});

const { call, create } = ownServer(() => server?.baseUrl);

const exec = (id: string, command: string) =>
  call<ExecReply>('POST', `/sandboxes/${id}/exec`, { command });

async function status(id: string) {
  return (
    await call<WireSandbox & { last_error: string | null; last_heartbeat_at: string | null }>(
      'GET',
      `/sandboxes/${id}`,
    )
  ).body;
}

/** A pass that acts on anything, however young or recently changed. */
const eager = { MATRX_RECONCILE_GRACE_SECONDS: '0', MATRX_RECONCILE_STUCK_SECONDS: '0' };

async function insertRow(row: { id: string; user: string; host: string; status: string }) {
  await database.pool.query(
    `INSERT INTO sandboxes (sandbox_id, user_id, status, container_id, created_at, hot_path,
       cold_path, host_id)
     VALUES ($1, $2, $3, $4, NOW() - INTERVAL '1 hour', '/home/agent', '/data/cold', $5)`,
    [row.id, row.user, row.status, `gone-${row.id}`, row.host],
  );
}

const newId = () => `sbx-${randomBytes(6).toString('hex')}`;

describe('the registry in Postgres', () => {
  it('sandboxes survive an API restart: listed, and exec still works', async () => {
    const user = testUser('restart');
    const sandbox = await create(user);
    expect((await exec(sandbox.sandbox_id, 'echo before')).body.stdout).toBe('before\n');
    await server.stop();
    server = await startApi();
    const listed = await call<{ sandboxes: WireSandbox[] }>('GET', `/sandboxes?user_id=${user}`);
    expect(listed.body.sandboxes.map((s) => [s.sandbox_id, s.status])).toEqual([
      [sandbox.sandbox_id, 'running'],
    ]);
    expect((await exec(sandbox.sandbox_id, 'echo after')).body.stdout).toBe('after\n');
    expect((await call('DELETE', `/sandboxes/${sandbox.sandbox_id}`)).status).toBe(204);
    expect(await sandboxContainers(user)).toEqual([]);
  });

  it('the API refuses to start on an outdated schema, saying to migrate', async () => {
    const fresh = await testDatabase('api_outdated', { migrated: false });
    const logFile = join(workDir, 'outdated.log');
    try {
      const started = startServer({ logFile, env: { ...env, MATRX_DATABASE_URL: fresh.url } });
      await expect(started).rejects.toThrow(/exited with 1/);
      expect(readFileSync(logFile, 'utf8')).toContain('run npm run migrate');
    } finally {
      await fresh.drop();
    }
  });

  it('a sandbox of another host is answered 409 naming that host, never acted on', async () => {
    const id = newId();
    await insertRow({
      id,
      user: testUser('elsewhere'),
      host: 'some-other-host',
      status: 'running',
    });
    const ran = await exec(id, 'echo no');
    expect(ran.status).toBe(409);
    expect(JSON.stringify(ran.body)).toContain('some-other-host');
    expect((await call('DELETE', `/sandboxes/${id}`)).status).toBe(409);
    expect((await call('POST', `/sandboxes/${id}/heartbeat`)).status).toBe(409);
    expect(await status(id)).toMatchObject({ status: 'running', last_heartbeat_at: null });
  });
});

describe('the reconciler', () => {
  it('a container removed behind the service: stopped after one pass, with the reason', async () => {
    const user = testUser('gone');
    const sandbox = await create(user);
    await docker.getContainer(sandbox.container_id ?? '').remove({ force: true });
    const pass = await reconcileOnce({ ...env, ...eager });
    expect(pass.code).toBe(0);
    expect(passSummaries(pass.entries)[0]).toMatchObject({ actions: { container_gone: 1 } });
    expect(await status(sandbox.sandbox_id)).toMatchObject({
      status: 'stopped',
      last_error: 'its container is gone',
    });
  });

  it('a stranger container with our labels: a warning, and it keeps running', async () => {
    const id = newId();
    const user = testUser('stranger');
    const stranger = await docker.createContainer({
      name: id,
      Image: 'matrx-sandbox:latest',
      Labels: { 'matrx.sandbox_id': id, 'matrx.user_id': user, 'matrx.host_id': hostId },
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      await stranger.start();
      const pass = await reconcileOnce({ ...env, ...eager });
      const warning = pass.entries.find((entry) => entry.sandbox_id === id);
      expect(warning).toMatchObject({
        level: 'WARNING',
        message: 'sandbox container has no registry row: left alone',
      });
      expect((await stranger.inspect()).State.Running).toBe(true);
      expect((await call('GET', `/sandboxes/${id}`)).status).toBe(404);
    } finally {
      await stranger.remove({ force: true });
    }
  });

  it('an expired sandbox: its files saved, then expired, its container gone', async () => {
    const user = testUser('expired');
    const sandbox = await create(user);
    await exec(sandbox.sandbox_id, 'echo kept > notes.txt');
    await database.pool.query(
      `UPDATE sandboxes SET created_at = NOW() - INTERVAL '3 hours',
         expires_at = NOW() - INTERVAL '1 minute' WHERE sandbox_id = $1`,
      [sandbox.sandbox_id],
    );
    const pass = await reconcileOnce({ ...env, ...eager });
    expect(passSummaries(pass.entries)[0]).toMatchObject({ actions: { expired: 1 } });
    expect((await status(sandbox.sandbox_id)).status).toBe('expired');
    expect(await sandboxContainers(user)).toEqual([]);
    const saved = await s3Client.send(
      new HeadObjectCommand({ Bucket: s3.bucket, Key: `users/${user}/hot/notes.txt` }),
    );
    expect(saved.ContentLength).toBe(5);
  });

  it('two reconcilers with different host ids on one database: each acts on its own rows only', async () => {
    const hostA = `${hostId}-a`;
    const hostB = `${hostId}-b`;
    const rowA = newId();
    const rowB = newId();
    await insertRow({ id: rowA, user: testUser('host-a'), host: hostA, status: 'running' });
    await insertRow({ id: rowB, user: testUser('host-b'), host: hostB, status: 'running' });
    const passA = await reconcileOnce({ ...env, ...eager, MATRX_HOST_ID: hostA });
    expect((await status(rowA)).status).toBe('stopped');
    expect((await status(rowB)).status).toBe('running');
    expect(passA.entries.some((entry) => entry.sandbox_id === rowB)).toBe(false);
    const passB = await reconcileOnce({ ...env, ...eager, MATRX_HOST_ID: hostB });
    expect((await status(rowB)).status).toBe('stopped');
    expect(passB.entries.some((entry) => entry.sandbox_id === rowA)).toBe(false);
  });

  it('refuses to run on an outdated schema, saying to migrate', async () => {
    const fresh = await testDatabase('outdated', { migrated: false });
    try {
      const pass = await reconcileOnce({ ...env, MATRX_DATABASE_URL: fresh.url });
      expect(pass.code).toBe(1);
      expect(JSON.stringify(pass.entries)).toContain('run npm run migrate');
    } finally {
      await fresh.drop();
    }
  });

  it('the API killed with SIGKILL in the middle of a create: after a pass nothing is stuck', async () => {
    const user = testUser('killed');
    const creating = call('POST', '/sandboxes', { user_id: user }).catch(() => null);
    await until(
      'the create made a container',
      async () => (await sandboxContainers(user)).length > 0,
      {
        intervalMs: 20,
      },
    );
    await server.kill();
    await creating;
    const pass = await reconcileOnce({ ...env, ...eager });
    expect(pass.code).toBe(0);
    expect(passSummaries(pass.entries)[0]).toMatchObject({ failed: 0 });
    const { rows } = await database.pool.query<{ status: string }>(
      'SELECT status FROM sandboxes WHERE user_id = $1',
      [user],
    );
    expect(rows.map((row) => row.status)).toEqual(['stopped']);
    expect(await sandboxContainers(user)).toEqual([]);
    server = await startApi();
  });
});
