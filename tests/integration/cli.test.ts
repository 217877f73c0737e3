import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { apiKey, baseUrl, testUser } from '../support/api.js';
import { deleteAll } from '../support/sandboxes.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `matrx <args>` as a user runs it: a child process of bin/matrx.mjs, the server in its env. */
function matrx(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  const child = spawn(process.execPath, ['bin/matrx.mjs', ...args], {
    env: { ...process.env, MATRX_URL: baseUrl(), MATRX_API_KEY: apiKey(), ...options.env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.stdin ?? '');
  return new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const user = testUser('cli');
let sandboxId: string;

beforeAll(async () => {
  const created = await matrx(['create', '--user', user, '--ttl', '600', '--json']);
  expect(created).toMatchObject({ code: 0, stderr: '' });
  sandboxId = (JSON.parse(created.stdout) as { sandbox_id: string }).sandbox_id;
});
afterAll(() => deleteAll(user));

describe('the matrx CLI', () => {
  it('lists and gets sandboxes, as a table or as JSON', async () => {
    const listed = await matrx(['ls', '--user', user, '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({
      total: 1,
      sandboxes: [{ sandbox_id: sandboxId }],
    });
    const table = await matrx(['ls', '--user', user]);
    expect(table.stdout.split('\n')[0]).toMatch(/^SANDBOX\s+USER\s+STATUS\s+EXPIRES$/);
    expect(table.stdout).toContain(sandboxId);
    const got = await matrx(['get', sandboxId, '--json']);
    expect(JSON.parse(got.stdout)).toMatchObject({ sandbox_id: sandboxId, user_id: user });
  });

  it('exec prints the output and exits with the command’s exit code', async () => {
    const ran = await matrx(['exec', sandboxId, '--', 'echo out; echo err >&2; exit 3']);
    expect(ran).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    const words = await matrx([
      'exec',
      sandboxId,
      '--cwd',
      '/tmp',
      '--',
      'printf',
      '%s|',
      'a b',
      "c'd",
    ]);
    expect(words).toMatchObject({ code: 0, stdout: "a b|c'd|" });
    const json = await matrx(
      ['exec', sandboxId, '--json', '--env', 'X=1', '--stdin', '--', 'echo $X; cat; pwd'],
      {
        stdin: 'piped\n',
      },
    );
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      exit_code: 0,
      stdout: '1\npiped\n/tmp\n',
      cwd: '/tmp',
    });
  });

  it('exec --background prints a process id; --follow streams it and exits with its code', async () => {
    const started = await matrx(['exec', sandboxId, '--background', '--', 'sleep 1']);
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/^proc-[0-9a-f]{12}\n$/);
    const followed = await matrx([
      'exec',
      sandboxId,
      '-b',
      '-f',
      '--',
      'for i in 1 2; do echo $i; sleep 0.2; done; exit 5',
    ]);
    expect(followed).toEqual({ code: 5, stdout: '1\n2\n', stderr: '' });
  });

  it('shell runs each line, the directory kept, and exits with the last code', async () => {
    const session = await matrx(['shell', sandboxId], {
      stdin: 'cd /var\npwd\n\nls /nonexistent\n',
    });
    expect(session.code).toBe(2);
    expect(session.stdout).toBe('/var\n');
    expect(session.stderr).toContain('No such file or directory');
  });

  it('says what went wrong in one line with the status; usage mistakes exit 2', async () => {
    const missing = await matrx(['get', 'sbx-000000000000']);
    expect(missing).toEqual({
      code: 1,
      stdout: '',
      stderr: 'matrx: 404 Sandbox sbx-000000000000 not found (GET /sandboxes/sbx-000000000000)\n',
    });
    const asJson = await matrx(['get', 'sbx-000000000000', '--json']);
    expect(JSON.parse(asJson.stderr)).toEqual({
      status: 404,
      detail: 'Sandbox sbx-000000000000 not found',
    });
    const keyless = await matrx(['ls'], { env: { MATRX_API_KEY: '' } });
    expect(keyless.code).toBe(1);
    expect(keyless.stderr).toMatch(/^matrx: 401 Missing API key/);
    const usage = await matrx(['exec', sandboxId, '--bogus']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('see matrx exec --help');
  });

  it('has --help for every command', async () => {
    const overview = await matrx(['--help']);
    expect(overview.code).toBe(0);
    for (const command of ['create', 'ls', 'get', 'exec', 'shell', 'cp', 'files', 'rm', 'mcp']) {
      expect(overview.stdout).toContain(`  ${command} `);
      const help = await matrx([command, '--help']);
      expect([command, help.code, help.stdout.startsWith(`Usage: matrx ${command}`)]).toEqual([
        command,
        0,
        true,
      ]);
    }
  });

  it('cp copies files both ways byte for byte, directories as tar, with a progress meter', async () => {
    const local = mkdtempSync(join(tmpdir(), 'matrx-cli-'));
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31) % 256));
    writeFileSync(join(local, 'data.bin'), bytes);
    const up = await matrx([
      'cp',
      '--progress',
      join(local, 'data.bin'),
      `${sandboxId}:/home/agent/data.bin`,
    ]);
    expect(up.code).toBe(0);
    expect(up.stderr).toMatch(/matrx: 0\.3 MiB \/ 0\.3 MiB\n$/);
    const down = await matrx(['cp', `${sandboxId}:/home/agent/data.bin`, join(local, 'back.bin')]);
    expect(down.code).toBe(0);
    expect(readFileSync(join(local, 'back.bin')).equals(bytes)).toBe(true);
    const toStdout = await matrx(['cp', `${sandboxId}:/home/agent/data.bin`, '-', '--json']);
    expect(toStdout.code).toBe(0);
    mkdirSync(join(local, 'tree', 'sub'), { recursive: true });
    writeFileSync(join(local, 'tree', 'sub', 'x.txt'), 'x\0y');
    const upTree = await matrx([
      'cp',
      join(local, 'tree'),
      `${sandboxId}:/home/agent/tree`,
      '--json',
    ]);
    expect(JSON.parse(upTree.stdout)).toEqual({ path: '/home/agent/tree', files: 1, bytes: 3 });
    const downTree = await matrx(['cp', `${sandboxId}:/home/agent/tree`, join(local, 'tree2')]);
    expect(downTree.code).toBe(0);
    expect(readFileSync(join(local, 'tree2', 'sub', 'x.txt'), 'utf8')).toBe('x\0y');
    const listed = await matrx([
      'files',
      'ls',
      `${sandboxId}:/home/agent/tree`,
      '--depth',
      '2',
      '--json',
    ]);
    expect(JSON.parse(listed.stdout).entries.map((e: { path: string }) => e.path)).toEqual([
      '/home/agent/tree/sub',
      '/home/agent/tree/sub/x.txt',
    ]);
    const table = await matrx(['files', 'ls', `${sandboxId}:/home/agent`]);
    expect(table.stdout).toMatch(/^file\s+0644\s+300000 \S+\s+\/home\/agent\/data\.bin$/m);
    const removed = await matrx(['rm', '-r', `${sandboxId}:/home/agent/tree`]);
    expect(removed.code).toBe(0);
    const gone = await matrx(['files', 'ls', `${sandboxId}:/home/agent/tree`]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^matrx: 404 No such file or directory/);
  });

  it('rm deletes a sandbox', async () => {
    const removed = await matrx(['rm', '--force', sandboxId, '--json']);
    expect(removed.code).toBe(0);
    expect(JSON.parse(removed.stdout)).toEqual({ deleted: [sandboxId] });
    const after = await matrx(['get', sandboxId, '--json']);
    expect(JSON.parse(after.stdout)).toMatchObject({ status: 'stopped' });
  });
});
