import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort, startServer, type RunningServer } from '../../scripts/serverProcess.js';
import {
  EMBEDDED_BUCKET,
  embeddedS3Client,
  startEmbeddedS3,
  type EmbeddedS3,
} from '../../lib/embeddedS3.js';
import { testUser } from '../support/api.js';
import { docker, sandboxContainers } from '../support/docker.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';

/** This suite runs its own S3 server, so it can stop it in the middle of a save. */
let s3: EmbeddedS3;
let s3Port: number;
let s3Dir: string;
let server: RunningServer;
let client: S3Client;
let serverLog: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'matrx-home-'));
  s3Dir = join(dir, 's3');
  s3Port = await freePort();
  s3 = await startEmbeddedS3(s3Dir, s3Port);
  client = embeddedS3Client(s3);
  serverLog = join(dir, 'server.log');
  server = await startServer({
    logFile: serverLog,
    env: {
      ...s3.env,
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_SHUTDOWN_TIMEOUT_SECONDS: '1',
      MATRX_LOG_LEVEL: 'DEBUG',
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await s3?.close();
  client?.destroy();
});

const { call, create: createSandbox } = ownServer(() => server?.baseUrl);

async function create(user: string): Promise<string> {
  return (await createSandbox(user)).sandbox_id;
}

async function run(id: string, command: string): Promise<string> {
  const ran = await call<ExecReply>('POST', `/sandboxes/${id}/exec`, { command, timeout: 120 });
  expect(ran.body).toMatchObject({ exit_code: 0 });
  return ran.body.stdout;
}

async function keys(user: string): Promise<string[]> {
  const found: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: EMBEDDED_BUCKET,
        Prefix: `users/${user}/hot/`,
        ContinuationToken: token,
      }),
    );
    found.push(
      ...(page.Contents ?? []).map((o) => (o.Key ?? '').slice(`users/${user}/hot/`.length)),
    );
    token = page.NextContinuationToken;
  } while (token);
  return found.filter((key) => key !== '.keep').sort();
}

/** Every file and link under the home: path, owner, mode, and the content's hash. */
const MANIFEST =
  "find . -mindepth 1 \\( -type f -o -type l \\) ! -name '.bash*' ! -name .profile -print0 | sort -z | " +
  'xargs -0 -I{} sh -c \'printf "%s %s " "$(stat -c "%n %U %a %F" "{}")" "$(if [ -L "{}" ]; then readlink "{}"; else sha256sum < "{}" | cut -c1-64; fi)"; echo\'';

describe('home directories in S3', () => {
  const user = testUser('home');

  it('session 2 gets every file of session 1, byte for byte, owned by agent, with its mode', async () => {
    const first = await create(user);
    await run(
      first,
      [
        'mkdir -p deep/er/est "dir with space"',
        'for i in $(seq 1 500); do echo "file $i" > deep/er/est/f$i.txt; done',
        'head -c 20000000 /dev/urandom > big.bin',
        'echo hi > "dir with space/naïve résumé ✓.txt"',
        'printf "#!/bin/sh\\necho ran\\n" > tool.sh && chmod 750 tool.sh',
        'ln -s deep/er/est/f1.txt shortcut',
        'echo junk > scratch.tmp && mkdir -p __pycache__ && echo x > __pycache__/m.pyc',
        'echo "alias ll=\'ls -l\'" >> .bashrc',
      ].join(' && '),
    );
    const before = await run(first, MANIFEST);
    expect((await call('DELETE', `/sandboxes/${first}`)).status).toBe(204);
    expect(await sandboxContainers(user)).toEqual([]);

    const stored = await keys(user);
    expect(stored).toContain('big.bin');
    expect(stored).toContain('dir with space/naïve résumé ✓.txt');
    expect(stored).toContain('shortcut');
    expect(stored.filter((k) => k.startsWith('deep/er/est/'))).toHaveLength(500);
    expect(stored.some((k) => k.endsWith('.tmp') || k.includes('__pycache__'))).toBe(false);
    // The image's own dotfiles stay the image's, unless the agent changed one.
    expect(stored).toContain('.bashrc');
    expect(stored).not.toContain('.profile');

    const second = await create(user);
    const after = await run(
      second,
      MANIFEST.replace(
        "! -name '.bash*'",
        "! -name '.bash*' ! -name '*.tmp' ! -path '*__pycache__*'",
      ),
    );
    const expected = before
      .split('\n')
      .filter((line) => !line.includes('.tmp') && !line.includes('__pycache__'))
      .join('\n');
    expect(after).toBe(expected);
    expect(after).toContain('./tool.sh agent 750');
    expect(await run(second, './tool.sh')).toBe('ran\n');

    await run(second, 'rm deep/er/est/f7.txt "dir with space/naïve résumé ✓.txt"');
    expect((await call('DELETE', `/sandboxes/${second}?graceful=false`)).status).toBe(204);
    const left = await keys(user);
    expect(left).not.toContain('deep/er/est/f7.txt');
    expect(left).not.toContain('dir with space/naïve résumé ✓.txt');
    expect(left).toContain('deep/er/est/f8.txt');

    // Session 2 changed nothing it kept: nothing went up again, two files went away.
    const saves = readFileSync(serverLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((e) => e.message === 'home saved' && e.user_id === user);
    expect(saves.at(-1)).toMatchObject({ uploaded: 0, deleted: 2 });
  });

  it('the big file went up in parts', () => {
    const lines = readFileSync(serverLog, 'utf8').split('\n').filter(Boolean);
    const puts = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((e) => e.operation === 'put_object_multipart');
    expect(puts.map((e) => String(e.key))).toContain(`users/${user}/hot/big.bin`);
  });

  it('/complete saves too', async () => {
    const id = await create(user);
    await run(id, 'echo done > completed.txt');
    expect((await call('POST', `/sandboxes/${id}/complete`)).status).toBe(200);
    for (let i = 0; i < 100 && (await sandboxContainers(user)).length > 0; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await keys(user)).toContain('completed.txt');
  });

  it('two sandboxes of one user: a save deletes only what it restored, the later save wins', async () => {
    const pair = testUser('pair');
    const seed = await create(pair);
    await run(seed, 'echo original > shared.txt && echo keep > restored.txt');
    await call('DELETE', `/sandboxes/${seed}`);

    const a = await create(pair);
    const b = await create(pair);
    await run(a, 'echo from-a > a.txt && echo A > shared.txt');
    await run(b, 'echo from-b > b.txt && echo B > shared.txt && rm restored.txt');
    expect((await call('DELETE', `/sandboxes/${a}`)).status).toBe(204);
    expect((await call('DELETE', `/sandboxes/${b}`)).status).toBe(204);
    expect(await keys(pair)).toEqual(['a.txt', 'b.txt', 'shared.txt']);

    const check = await create(pair);
    expect(await run(check, 'cat shared.txt a.txt b.txt')).toBe('B\nfrom-a\nfrom-b\n');
    await call('DELETE', `/sandboxes/${check}`);
  });

  it('S3 down during DELETE: 503 naming S3, the container stays; DELETE again once it is back', async () => {
    const down = testUser('down');
    const id = await create(down);
    await run(id, 'echo precious > precious.txt');
    await s3.close();
    try {
      const failed = await call('DELETE', `/sandboxes/${id}`);
      expect(failed.status).toBe(503);
      expect(failed.body).toEqual({ detail: expect.stringContaining('S3') });
      const [container] = await sandboxContainers(down);
      expect(container).toBeDefined();
      const state = await call<WireSandbox & { last_error: string }>('GET', `/sandboxes/${id}`);
      expect(state.body).toMatchObject({ status: 'shutting_down', last_error: expect.any(String) });
    } finally {
      s3 = await startEmbeddedS3(s3Dir, s3Port);
    }
    expect((await call('DELETE', `/sandboxes/${id}`)).status).toBe(204);
    expect(await sandboxContainers(down)).toEqual([]);
    expect(await keys(down)).toEqual(['precious.txt']);
  });

  it('admin endpoints: usage per tier, empty a tier, 10,000 objects paginate', async () => {
    const many = testUser('many');
    const bodies = Array.from({ length: 10_000 }, (_, i) => `users/${many}/cold/obj-${i}`);
    for (let start = 0; start < bodies.length; start += 50) {
      await Promise.all(
        bodies
          .slice(start, start + 50)
          .map((Key) =>
            client.send(new PutObjectCommand({ Bucket: EMBEDDED_BUCKET, Key, Body: 'x' })),
          ),
      );
    }
    const usage = await call<{ cold: { total_objects: number; total_size_bytes: number } }>(
      'GET',
      `/users/${many}/storage`,
    );
    expect(usage.status).toBe(200);
    expect(usage.body.cold).toEqual({ total_objects: 10_000, total_size_bytes: 10_000 });
    const emptied = await call('DELETE', `/users/${many}/storage?tier=cold`);
    expect(emptied.body).toEqual({ user_id: many, tier: 'cold', deleted_objects: 10_000 });
    expect((await call('DELETE', `/users/${many}/storage?tier=warm`)).status).toBe(422);
    expect((await call('GET', '/users/bad%20user/storage')).status).toBe(422);
  }, 300_000);
});

afterAll(async () => {
  const left = await docker.listContainers({ all: true, filters: { label: ['matrx.sandbox_id'] } });
  await Promise.all(
    left
      .filter(
        (c) =>
          (c.Labels['matrx.user_id'] ?? '').includes('-home') ||
          (c.Labels['matrx.user_id'] ?? '').includes('-pair') ||
          (c.Labels['matrx.user_id'] ?? '').includes('-down'),
      )
      .map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
  );
});
