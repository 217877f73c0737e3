import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  AuthError,
  ConflictError,
  ConnectionError,
  NotFoundError,
  Sandboxes,
  TimeoutError,
  ValidationError,
  type Sandbox,
} from '../../client/index.js';
import { apiKey, baseUrl, contractCheckedFetch, testUser } from '../support/api.js';
import { deleteAll } from '../support/sandboxes.js';

/** The client against the suite's server, every answer checked against the routes. */
const client = new Sandboxes({ url: baseUrl(), apiKey: apiKey(), fetch: contractCheckedFetch });
const user = testUser('client');
let sandbox: Sandbox;

beforeAll(async () => {
  // This worker's fetch may hold a keep-alive connection an earlier file left idle, which the
  // server may have closed while this file loaded: a GET (retried) finds out before the create.
  await client.health();
  sandbox = await client.create(user, { ttl_seconds: 600 });
});
afterAll(() => deleteAll(user));

describe('the client: sandboxes', () => {
  it('creates a ready sandbox and gets, lists and refreshes it', async () => {
    expect(sandbox.id).toMatch(/^sbx-[0-9a-f]{12}$/);
    expect(sandbox.info).toMatchObject({ user_id: user, status: 'ready', ttl_seconds: 600 });
    const fetched = await client.get(sandbox.id);
    expect(fetched.info?.sandbox_id).toBe(sandbox.id);
    const listed = await client.list({ userId: user });
    expect(listed.sandboxes.map((s) => s.sandbox_id)).toEqual([sandbox.id]);
    expect(listed.total).toBe(1);
    expect((await client.list()).total).toBeGreaterThanOrEqual(1);
    expect((await sandbox.refresh()).sandbox_id).toBe(sandbox.id);
    expect((await client.health()).status).toMatch(/healthy|degraded/);
  });

  it('heartbeats and extends', async () => {
    expect(await sandbox.heartbeat()).toEqual({ acknowledged: true, sandbox_id: sandbox.id });
    const before = Date.now();
    const extended = await sandbox.extend(900);
    expect(Date.parse(extended.expires_at)).toBeGreaterThanOrEqual(before + 890_000);
    expect(sandbox.info?.expires_at).toBe(extended.expires_at);
  });
});

describe('the client: exec', () => {
  it('runs a command: output, exit code, the cwd kept, env and stdin', async () => {
    const first = await sandbox.exec('cd /tmp && echo out && echo err >&2; exit 3');
    expect(first).toMatchObject({ exit_code: 3, stdout: 'out\n', stderr: 'err\n', cwd: '/tmp' });
    const second = await sandbox.exec('pwd; echo "$GREETING"; wc -c', {
      env: { GREETING: 'hi' },
      stdin: 'abc',
    });
    expect(second.stdout).toBe('/tmp\nhi\n3\n');
    expect((await sandbox.exec('pwd', { cwd: '/home/agent' })).stdout).toBe('/home/agent\n');
  });

  it('gives the timeout as an answer: exit 124, timed_out', async () => {
    const slow = await sandbox.exec('sleep 5', { timeout: 1 });
    expect(slow).toMatchObject({ exit_code: 124, timed_out: true });
  });
});

describe('the client: background processes', () => {
  it('starts one and iterates its output over the long-poll until it ends', async () => {
    const process = await sandbox.processes.start(
      'for i in 1 2 3; do echo tick $i; sleep 0.3; done',
    );
    expect(process.id).toMatch(/^proc-[0-9a-f]{12}$/);
    expect(process.info?.status).toBe('running');
    let stdout = '';
    for await (const read of process.output()) stdout += read.stdout;
    expect(stdout).toBe('tick 1\ntick 2\ntick 3\n');
    expect((await process.refresh()).status).toBe('exited');
    expect((await sandbox.processes.list()).map((p) => p.process_id)).toContain(process.id);
    const again = await sandbox.processes.get(process.id);
    expect(again.info?.exit_code).toBe(0);
    // From an offset: only what came after it.
    expect((await process.read({ stdout_offset: 7 })).stdout).toBe('tick 2\ntick 3\n');
  });

  it('writes to its stdin, closes it, and waits for the end', async () => {
    const process = await sandbox.processes.start('cat; echo done >&2');
    await process.write('one ');
    const closed = await process.closeStdin();
    expect(closed.process_id).toBe(process.id);
    expect(await process.wait()).toEqual({
      stdout: 'one ',
      stderr: 'done\n',
      status: 'exited',
      exit_code: 0,
    });
    await expect(process.write('late')).rejects.toBeInstanceOf(ConflictError);
  });

  it('kills one', async () => {
    const process = await sandbox.processes.start('echo started; sleep 300');
    expect((await process.read({ wait: 10 })).stdout).toBe('started\n');
    const killed = await process.kill('KILL');
    expect(killed.status).toBe('killed');
    expect(process.info?.status).toBe('killed');
  });
});

describe('the client: errors, timeouts and aborts', () => {
  it('throws typed errors with the status and the API’s detail', async () => {
    const missing = await client.get('sbx-000000000000').catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({
      status: 404,
      detail: 'Sandbox sbx-000000000000 not found',
      method: 'GET',
      path: '/sandboxes/sbx-000000000000',
    });
    const invalid = await sandbox.exec('pwd', { cwd: 'relative' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect((invalid as ValidationError).issues).toEqual([
      expect.objectContaining({ loc: ['body', 'cwd'] }),
    ]);
    const noProcess = sandbox.processes.get('proc-000000000000');
    await expect(noProcess).rejects.toBeInstanceOf(NotFoundError);
  });

  it('throws AuthError for a missing or wrong key', async () => {
    const keyless = new Sandboxes({ url: baseUrl(), apiKey: '', fetch: contractCheckedFetch });
    await expect(keyless.list()).rejects.toMatchObject({ name: 'AuthError', status: 401 });
    const wrong = new Sandboxes({ url: baseUrl(), apiKey: 'wrong', fetch: contractCheckedFetch });
    const error = await wrong.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ status: 403, detail: 'Invalid API key' });
  });

  it('stops a call at its timeout, and at its AbortSignal', async () => {
    const process = await sandbox.processes.start('sleep 60');
    const timedOut = process.read({ wait: 10, timeoutMs: 300 });
    await expect(timedOut).rejects.toBeInstanceOf(TimeoutError);
    const controller = new AbortController();
    const aborted = process.read({ wait: 10, signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    await process.kill();
  });

  it('retries an idempotent call on a network error, then says where it could not connect', async () => {
    let attempts = 0;
    const unreachable = new Sandboxes({
      url: 'http://127.0.0.1:1',
      retries: 2,
      retryDelayMs: 10,
      fetch: (input, init) => {
        attempts += 1;
        return fetch(input, init);
      },
    });
    const error = await unreachable.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toContain('http://127.0.0.1:1/sandboxes');
    expect(attempts).toBe(3);
    attempts = 0;
    await expect(unreachable.connect('sbx-000000000000').exec('true')).rejects.toBeInstanceOf(
      ConnectionError,
    );
    expect(attempts).toBe(1);
  });
});

describe('the client: files', () => {
  const dir = '/home/agent/client-files';

  it('writes and reads bytes and text, unchanged, with progress', async () => {
    const bytes = new Uint8Array(200_000).map((_, i) => (i * 7) % 256);
    const progress: number[] = [];
    const written = await sandbox.files.write(`${dir}/bin.dat`, bytes, {
      onProgress: (done) => progress.push(done),
    });
    expect(written).toMatchObject({ type: 'file', size: 200_000, mode: '0644' });
    expect(progress.at(-1)).toBe(200_000);
    expect(Buffer.from(await sandbox.files.read(`${dir}/bin.dat`)).equals(Buffer.from(bytes))).toBe(
      true,
    );
    await sandbox.files.write(`${dir}/note.txt`, 'héllo\nworld\n', { mode: '600' });
    expect(await sandbox.files.readText(`${dir}/note.txt`)).toBe('héllo\nworld\n');
    expect((await sandbox.files.stat(`${dir}/note.txt`)).mode).toBe('0600');
  });

  it('lists, makes directories, moves, edits, searches and removes', async () => {
    expect((await sandbox.files.mkdir(`${dir}/sub/deeper`)).type).toBe('dir');
    const moved = await sandbox.files.move(`${dir}/note.txt`, `${dir}/sub/note.txt`);
    expect(moved.path).toBe(`${dir}/sub/note.txt`);
    const listed = await sandbox.files.list(dir, { depth: 2 });
    expect(listed.entries.map((e) => e.path)).toEqual([
      `${dir}/bin.dat`,
      `${dir}/sub`,
      `${dir}/sub/deeper`,
      `${dir}/sub/note.txt`,
    ]);
    expect(await sandbox.files.edit(`${dir}/sub/note.txt`, 'world', 'there')).toEqual({
      path: `${dir}/sub/note.txt`,
      replacements: 1,
    });
    await expect(sandbox.files.edit(`${dir}/sub/note.txt`, 'absent', 'x')).rejects.toBeInstanceOf(
      ConflictError,
    );
    const found = await sandbox.files.search('^the', dir);
    expect(found.matches).toEqual([{ path: `${dir}/sub/note.txt`, line: 2, text: 'there' }]);
    await expect(sandbox.files.remove(`${dir}/sub`)).rejects.toBeInstanceOf(ConflictError);
    await sandbox.files.remove(`${dir}/sub`, { recursive: true });
    expect(await sandbox.files.exists(`${dir}/sub`)).toBe(false);
    expect(await sandbox.files.exists(dir)).toBe(true);
    await expect(sandbox.files.read(`${dir}/nothing`)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('uploads and downloads a directory as tar, byte for byte', async () => {
    const local = mkdtempSync(join(tmpdir(), 'matrx-client-'));
    mkdirSync(join(local, 'up', 'nested'), { recursive: true });
    writeFileSync(join(local, 'up', 'a.txt'), 'alpha');
    writeFileSync(join(local, 'up', 'nested', 'b.bin'), Buffer.from([0, 255, 10, 13]));
    const uploaded = await sandbox.files.uploadDir(join(local, 'up'), `${dir}/tree`);
    expect(uploaded).toEqual({ path: `${dir}/tree`, files: 2, bytes: 9 });
    expect(await sandbox.files.readText(`${dir}/tree/a.txt`)).toBe('alpha');
    await sandbox.files.downloadDir(`${dir}/tree`, join(local, 'down'));
    expect(readFileSync(join(local, 'down', 'a.txt'), 'utf8')).toBe('alpha');
    expect([...readFileSync(join(local, 'down', 'nested', 'b.bin'))]).toEqual([0, 255, 10, 13]);
  });
});

describe('the client: the end of a sandbox, and storage', () => {
  it('completes, reports an error, deletes; reads and empties the user’s storage', async () => {
    expect(await sandbox.complete({ answer: 42 })).toEqual({
      status: 'shutting_down',
      sandbox_id: sandbox.id,
    });
    const reported = await sandbox.error('late trouble', { step: 3 });
    expect(reported).toMatchObject({ sandbox_id: sandbox.id, error_received: true });
    await sandbox.delete({ graceful: false });
    expect((await sandbox.refresh()).status).toBe('stopped');
    const usage = await client.storage.usage(user);
    expect(usage.user_id).toBe(user);
    expect((await client.storage.delete(user, 'cold')).tier).toBe('cold');
  });
});
