import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import tar from 'tar-stream';
import { api, apiKey, baseUrl, testUser } from '../support/api.js';
import { contractViolation } from '../support/contract.js';
import { createReady, deleteAll, exec, type WireSandbox } from '../support/sandboxes.js';
import { until } from '../support/until.js';
import { SMALL_FILE_BYTES } from '../../lib/adapters/docker/files/dockerFiles.js';

/** MATRX_MAX_FILE_BYTES of the suite's server (tests/integration/globalSetup.mjs). */
const LIMIT = 8 * 1024 * 1024;

interface WireEntry {
  path: string;
  name: string;
  type: string;
  size: number;
  mode: string;
  modified_at: string;
  target?: string;
}

interface WireSearch {
  matches: { path: string; line: number; text: string }[];
  truncated: boolean;
  engine: string;
}

const user = testUser('files');
let sandbox: WireSandbox;
/** The same image, searching with the grep fallback (MATRX_SEARCH_ENGINE=grep in its env). */
let grepSandbox: WireSandbox;

beforeAll(async () => {
  sandbox = await createReady(user);
  const created = await api<WireSandbox>('POST', '/sandboxes', {
    json: { user_id: user, config: { env: { MATRX_SEARCH_ENGINE: 'grep' } } },
  });
  expect(created.status).toBe(201);
  grepSandbox = created.body;
});
afterAll(() => deleteAll(user));

const files = (id = sandbox.sandbox_id) => `/sandboxes/${id}/files`;
const query = (params: Record<string, string>) => new URLSearchParams(params).toString();

/** Raw bytes in and out, which the JSON helper cannot carry; the answer checked as it checks. */
async function raw(method: string, path: string, body?: Buffer, contentType?: string) {
  const response = await fetch(`${baseUrl()}${path}`, {
    method,
    headers: { 'x-api-key': apiKey(), ...(contentType && { 'content-type': contentType }) },
    body,
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const violation = contractViolation({
    method,
    url: response.url,
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    text: bytes.toString(),
  });
  if (violation) throw new Error(violation);
  return { status: response.status, bytes, headers: response.headers };
}

function writeFile(path: string, bytes: Buffer, extra: Record<string, string> = {}, id?: string) {
  return raw('PUT', `${files(id)}?${query({ path, ...extra })}`, bytes);
}

function readFile(path: string, extra: Record<string, string> = {}) {
  return raw('GET', `${files()}?${query({ path, ...extra })}`);
}

const detailOf = (reply: { bytes: Buffer }) =>
  (JSON.parse(reply.bytes.toString()) as { detail: unknown }).detail;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function shell(command: string, extra: Record<string, unknown> = {}, id?: string) {
  const reply = await exec(id ?? sandbox.sandbox_id, command, extra);
  expect(reply.body.stderr).toBe('');
  expect(reply.body.exit_code).toBe(0);
  return reply.body.stdout;
}

/** Random bytes with a NUL and invalid UTF-8 for sure. */
function binary(size: number): Buffer {
  const bytes = randomBytes(size);
  bytes[0] = 0;
  bytes[1] = 0xff;
  bytes[2] = 0xc3;
  return bytes;
}

describe('bytes are bytes', () => {
  it('a binary file goes in and out unchanged, whatever content type it is sent with', async () => {
    const bytes = binary(64 * 1024);
    for (const contentType of [undefined, 'application/json', 'text/plain; charset=utf-8']) {
      const path = `/home/agent/bin/${contentType ? contentType.replace(/\W/g, '') : 'none'}.bin`;
      const written = await raw('PUT', `${files()}?${query({ path })}`, bytes, contentType);
      expect(written.status).toBe(200);
      expect(JSON.parse(written.bytes.toString())).toMatchObject({
        path,
        type: 'file',
        size: bytes.length,
        mode: '0644',
      });
      const read = await readFile(path);
      expect(read.status).toBe(200);
      expect(read.headers.get('content-type')).toBe('application/octet-stream');
      expect(read.bytes.equals(bytes)).toBe(true);
      // Read back through exec, too.
      expect((await shell(`sha256sum < '${path}'`)).split(' ')[0]).toBe(sha256(bytes));
    }
  });

  it('a file written through exec reads the same through the API', async () => {
    const hex = (
      await shell('head -c 100000 /dev/urandom > /tmp/r.bin; od -An -v -tx1 /tmp/r.bin')
    ).replace(/\s/g, '');
    const read = await readFile('/tmp/r.bin');
    expect(read.status).toBe(200);
    expect(read.bytes.toString('hex')).toBe(hex);
  });

  it('a multi-MiB file round-trips, and an empty one', async () => {
    const bytes = binary(3 * 1024 * 1024 + 7);
    expect((await writeFile('/home/agent/big.bin', bytes)).status).toBe(200);
    expect((await readFile('/home/agent/big.bin')).bytes.equals(bytes)).toBe(true);
    expect((await writeFile('/home/agent/empty', Buffer.alloc(0))).status).toBe(200);
    const empty = await readFile('/home/agent/empty');
    expect([empty.status, empty.bytes.length]).toEqual([200, 0]);
  });

  it('at the bound between the channel and the archive calls, each way gives the same bytes', async () => {
    for (const size of [SMALL_FILE_BYTES - 1, SMALL_FILE_BYTES, SMALL_FILE_BYTES + 1]) {
      const bytes = binary(size);
      const path = `/home/agent/bound/${size}.bin`;
      const written = await writeFile(path, bytes, { mode: '755' });
      expect(written.status).toBe(200);
      expect(JSON.parse(written.bytes.toString())).toMatchObject({ size, mode: '0755' });
      expect((await readFile(path)).bytes.equals(bytes)).toBe(true);
      expect(await shell(`stat -c '%U %a %s' '${path}'; sha256sum < '${path}'`)).toBe(
        `agent 755 ${size}\n${sha256(bytes)}  -\n`,
      );
    }
    // Nothing of a write is left beside its target.
    expect(await shell('ls -A /home/agent/bound | sort')).toBe(
      [SMALL_FILE_BYTES - 1, SMALL_FILE_BYTES, SMALL_FILE_BYTES + 1]
        .map((size) => `${size}.bin\n`)
        .join(''),
    );
  });

  it('a large write makes folders, crosses file systems and is refused as a small one is', async () => {
    const bytes = binary(SMALL_FILE_BYTES + 1);
    await shell('mkdir /dev/shm/big && chown agent /dev/shm/big', { user: 'root' });
    await writeFile('/home/agent/root-big', Buffer.from('root'), { user: 'root' });
    for (const path of ['/home/agent/new/deeper/big.bin', '/dev/shm/big/file.bin']) {
      expect([path, (await writeFile(path, bytes, { mode: '600' })).status]).toEqual([path, 200]);
      expect(await shell(`stat -c '%U %a' '${path}'; sha256sum < '${path}'`)).toBe(
        `agent 600\n${sha256(bytes)}  -\n`,
      );
    }
    for (const [path, status] of [
      ['/home/agent', 409],
      ['/etc/matrx-big', 403],
      ['/home/agent/root-big', 403],
    ] as const) {
      expect([path, (await writeFile(path, bytes)).status]).toEqual([path, status]);
    }
    expect((await readFile('/home/agent/root-big')).bytes.toString()).toBe('root');
    // Nothing staged is left, nor beside a target on another file system.
    await until('nothing is staged', async () => (await shell('ls -A /run/matrx/f/1000')) === '');
    expect(await shell('ls -A /dev/shm/big')).toBe('file.bin\n');
  });

  it('over MATRX_MAX_FILE_BYTES is a 413, in and out, and the old file stays', async () => {
    await writeFile('/home/agent/kept', Buffer.from('old'));
    const tooBig = await writeFile('/home/agent/kept', Buffer.alloc(LIMIT + 1));
    expect(tooBig.status).toBe(413);
    expect(detailOf(tooBig)).toMatch(/over the limit of 8388608 bytes/);
    expect((await readFile('/home/agent/kept')).bytes.toString()).toBe('old');
    await shell(`head -c ${LIMIT + 1} /dev/zero > /home/agent/huge`);
    const read = await readFile('/home/agent/huge');
    expect(read.status).toBe(413);
    expect(detailOf(read)).toMatch(/over the limit/);
  });
});

describe('large bodies stream, in and out', () => {
  it('a chunked upload (no Content-Length) is read whole and written as it came', async () => {
    for (const size of [1000, 1024 * 1024 + 3]) {
      const bytes = binary(size);
      const path = `/home/agent/chunked/${size}.bin`;
      const response = await fetch(`${baseUrl()}${files()}?${query({ path })}`, {
        method: 'PUT',
        headers: { 'x-api-key': apiKey() },
        body: Readable.toWeb(Readable.from([bytes.subarray(0, 999), bytes.subarray(999)])),
        duplex: 'half',
      } as RequestInit);
      expect(response.status).toBe(200);
      expect(((await response.json()) as WireEntry).size).toBe(size);
      expect((await readFile(path)).bytes.equals(bytes)).toBe(true);
    }
  });

  it('an upload cut off part way leaves the old file, nothing staged, and the engine free', async () => {
    const path = '/home/agent/cut.bin';
    await writeFile(path, Buffer.from('old'));
    const url = new URL(`${baseUrl()}${files()}?${query({ path })}`);
    await new Promise<void>((resolve) => {
      const upload = httpRequest(url, {
        method: 'PUT',
        headers: { 'x-api-key': apiKey(), 'content-length': String(4 * 1024 * 1024) },
      });
      upload.on('error', () => resolve());
      upload.write(binary(1024 * 1024), () => setTimeout(() => upload.destroy(), 300));
      upload.on('close', () => resolve());
    });
    await until(
      'the old file is read',
      async () => (await readFile(path)).bytes.toString() === 'old',
    );
    const uid = (await shell('id -u')).trim();
    await until(
      'nothing is staged',
      async () => (await shell(`ls -A /run/matrx/f/${uid}`, { user: 'root' })) === '',
    );
  });

  it("a caller's own streamed-body header is dropped: the body is the request's", async () => {
    const response = await fetch(`${baseUrl()}${files()}?${query({ path: '/home/agent/own' })}`, {
      method: 'PUT',
      headers: { 'x-api-key': apiKey(), 'x-matrx-streamed-body': 'not-yours' },
      body: Buffer.from('mine'),
    });
    expect(response.status).toBe(200);
    expect((await readFile('/home/agent/own')).bytes.toString()).toBe('mine');
  });

  it('a large body refused before its handler (no key) is answered, and the server goes on', async () => {
    const refused = await fetch(`${baseUrl()}${files()}?${query({ path: '/home/agent/nokey' })}`, {
      method: 'PUT',
      body: binary(2 * 1024 * 1024),
    });
    expect(refused.status).toBe(401);
    expect((await writeFile('/home/agent/nokey', Buffer.from('ok'))).status).toBe(200);
  });

  it('a download dropped part way leaves the file readable', async () => {
    const bytes = binary(4 * 1024 * 1024);
    await writeFile('/home/agent/dropped.bin', bytes);
    const controller = new AbortController();
    const response = await fetch(
      `${baseUrl()}${files()}?${query({ path: '/home/agent/dropped.bin' })}`,
      { headers: { 'x-api-key': apiKey() }, signal: controller.signal },
    );
    expect(response.headers.get('content-length')).toBe(String(bytes.length));
    const reader = response.body?.getReader();
    await reader?.read();
    controller.abort();
    await reader?.cancel().catch(() => undefined);
    expect((await readFile('/home/agent/dropped.bin')).bytes.equals(bytes)).toBe(true);
  });
});

describe('permissions are the container user', () => {
  it('writing /etc as agent is a 403; as root it works, and each owns what it wrote', async () => {
    const denied = await writeFile('/etc/matrx-x', Buffer.from('x'));
    expect(denied.status).toBe(403);
    expect(detailOf(denied)).toBe('Permission denied: /etc/matrx-x');
    expect(
      (await writeFile('/etc/matrx-x', Buffer.from('x'), { user: 'root', mode: '600' })).status,
    ).toBe(200);
    expect((await writeFile('/home/agent/mine', Buffer.from('x'), { mode: '0640' })).status).toBe(
      200,
    );
    expect(await shell('stat -c "%U %a" /etc/matrx-x /home/agent/mine')).toBe(
      'root 600\nagent 640\n',
    );
  });

  it('reads respect permissions: a root-only file or folder is a 403 for agent', async () => {
    await shell('mkdir -m 700 /srv/private && echo s > /srv/private/f', { user: 'root' });
    for (const path of ['/etc/matrx-x', '/srv/private/f', '/etc/shadow']) {
      const read = await readFile(path);
      expect([path, read.status]).toEqual([path, 403]);
      expect(detailOf(read)).toBe(`Permission denied: ${path}`);
    }
    expect((await readFile('/etc/matrx-x', { user: 'root' })).bytes.toString()).toBe('x');
  });

  it('a user the sandbox does not have is a 422 that names it, for a read and a write', async () => {
    for (const answer of [
      await readFile('/etc/hostname', { user: 'ghost' }),
      await writeFile('/tmp/ghost', Buffer.from('x'), { user: 'ghost' }),
    ]) {
      expect(answer.status).toBe(422);
      expect(detailOf(answer)).toEqual([
        { loc: ['user'], msg: 'no user ghost in the sandbox', type: 'value_error' },
      ]);
    }
  });

  it("a file agent may not write is not replaced, though its folder is agent's", async () => {
    await writeFile('/home/agent/ro', Buffer.from('root'), { user: 'root' });
    const denied = await writeFile('/home/agent/ro', Buffer.from('agent'));
    expect(denied.status).toBe(403);
    expect((await readFile('/home/agent/ro')).bytes.toString()).toBe('root');
  });
});

describe('paths', () => {
  it('relative, .. and NUL are 422s', async () => {
    for (const path of ['home/agent/x', '/home/agent/../x', '/home/agent/x\0y', '']) {
      const read = await readFile(path);
      expect([path, read.status]).toEqual([path, 422]);
    }
    const move = await api('POST', `${files()}/move`, { json: { from: '/a/..', to: '/b' } });
    expect(move.status).toBe(422);
  });

  it('a missing path is the 404 of the contract; a directory where a file is expected a 409', async () => {
    const missing = await readFile('/home/agent/nope');
    expect([missing.status, detailOf(missing)]).toEqual([
      404,
      'No such file or directory: /home/agent/nope',
    ]);
    expect((await readFile('/home/agent')).status).toBe(409);
    expect((await writeFile('/home/agent', Buffer.from('x'))).status).toBe(409);
    const stat = await api('GET', `${files()}/stat?${query({ path: '/home/agent/nope' })}`);
    expect(stat.status).toBe(404);
  });
});

describe('stat, list, mkdir, delete, move', () => {
  it('stat shows a symlink as a symlink with its target', async () => {
    await shell('ln -sfn /etc/hostname /home/agent/link');
    const stat = await api<WireEntry>(
      'GET',
      `${files()}/stat?${query({ path: '/home/agent/link' })}`,
    );
    expect(stat.body).toMatchObject({ type: 'symlink', target: '/etc/hostname', name: 'link' });
  });

  it('list goes depth levels down, sorted by path', async () => {
    await shell('mkdir -p /home/agent/tree/b/c && touch /home/agent/tree/a /home/agent/tree/b/c/d');
    const list = async (depth: number) =>
      (
        await api<{ path: string; entries: WireEntry[] }>(
          'GET',
          `${files()}/list?${query({ path: '/home/agent/tree/', depth: String(depth) })}`,
        )
      ).body;
    expect((await list(1)).entries.map((e) => [e.name, e.type])).toEqual([
      ['a', 'file'],
      ['b', 'dir'],
    ]);
    const deep = await list(3);
    expect(deep.path).toBe('/home/agent/tree');
    expect(deep.entries.map((e) => e.path.replace('/home/agent/tree/', ''))).toEqual([
      'a',
      'b',
      'b/c',
      'b/c/d',
    ]);
    const notDir = await api('GET', `${files()}/list?${query({ path: '/home/agent/tree/a' })}`);
    expect(notDir.status).toBe(409);
  });

  it('mkdir makes parents, an existing dir is fine, a file in the way a 409', async () => {
    const made = await api<WireEntry>('POST', `${files()}/mkdir`, {
      json: { path: '/home/agent/m/n/o' },
    });
    expect(made.body).toMatchObject({ type: 'dir', mode: '0755' });
    expect(
      (await api('POST', `${files()}/mkdir`, { json: { path: '/home/agent/m' } })).status,
    ).toBe(200);
    expect(
      (await api('POST', `${files()}/mkdir`, { json: { path: '/home/agent/tree/a' } })).status,
    ).toBe(409);
    expect((await api('POST', `${files()}/mkdir`, { json: { path: '/opt/m' } })).status).toBe(403);
  });

  it('delete: a non-empty directory needs recursive', async () => {
    await shell('mkdir -p /home/agent/del/x && touch /home/agent/del/x/f');
    const del = (path: string, recursive?: string) =>
      api('DELETE', `${files()}?${query({ path, ...(recursive && { recursive }) })}`);
    const refused = await del('/home/agent/del');
    expect([refused.status, refused.body]).toEqual([
      409,
      { detail: 'Directory not empty: /home/agent/del' },
    ]);
    expect((await del('/home/agent/del/x/f')).status).toBe(204);
    expect((await del('/home/agent/del/x')).status).toBe(204);
    await shell('mkdir -p /home/agent/del/y && touch /home/agent/del/y/f');
    expect((await del('/home/agent/del', 'true')).status).toBe(204);
    expect((await del('/home/agent/del')).status).toBe(404);
    expect((await del('/etc/hostname')).status).toBe(403);
  });

  it('move: an existing target needs overwrite; parents of to are made', async () => {
    await writeFile('/home/agent/mv/a', Buffer.from('A'));
    await writeFile('/home/agent/mv/b', Buffer.from('B'));
    const move = (from: string, to: string, overwrite?: boolean) =>
      api<WireEntry>('POST', `${files()}/move`, { json: { from, to, overwrite } });
    const refused = await move('/home/agent/mv/a', '/home/agent/mv/b');
    expect([refused.status, refused.body]).toEqual([
      409,
      { detail: 'File exists: /home/agent/mv/b' },
    ]);
    expect((await move('/home/agent/mv/a', '/home/agent/mv/b', true)).status).toBe(200);
    expect((await readFile('/home/agent/mv/b')).bytes.toString()).toBe('A');
    const moved = await move('/home/agent/mv/b', '/home/agent/mv/deep/er/c');
    expect(moved.body).toMatchObject({ path: '/home/agent/mv/deep/er/c', size: 1 });
    expect((await move('/home/agent/mv/gone', '/home/agent/mv/x')).status).toBe(404);
  });
});

describe('edit', () => {
  const edit = (json: Record<string, unknown>) =>
    api<{ path: string; replacements: number }>('POST', `${files()}/edit`, {
      json: { path: '/home/agent/e.txt', ...json },
    });

  it('replaces one exact string; absent or ambiguous is a 409 that says which', async () => {
    await writeFile(
      '/home/agent/e.txt',
      Buffer.concat([Buffer.from('a b a\n'), Buffer.from([0xff, 0])]),
      { mode: '600' },
    );
    const absent = await edit({ old_string: 'zz', new_string: 'y' });
    expect([absent.status, absent.body]).toEqual([
      409,
      { detail: 'old_string was not found in /home/agent/e.txt' },
    ]);
    const ambiguous = await edit({ old_string: 'a', new_string: 'y' });
    expect(ambiguous.status).toBe(409);
    expect(ambiguous.body).toEqual({
      detail:
        'old_string was found 2 times in /home/agent/e.txt: make it unique, or set replace_all',
    });
    expect((await edit({ old_string: 'b', new_string: 'B' })).body).toEqual({
      path: '/home/agent/e.txt',
      replacements: 1,
    });
    expect(
      (await edit({ old_string: 'a', new_string: 'é', replace_all: true })).body.replacements,
    ).toBe(2);
    const read = await readFile('/home/agent/e.txt');
    expect(read.bytes).toEqual(Buffer.concat([Buffer.from('é B é\n'), Buffer.from([0xff, 0])]));
    expect(await shell('stat -c %a /home/agent/e.txt')).toBe('600\n');
  });
});

describe('search', () => {
  const tree = [
    'mkdir -p S/src/deep S/.hidden S/docs',
    'printf "hello world\\nHello again\\nnothing\\n" > S/src/a.ts',
    'printf "x hello\\n" > S/src/deep/b.ts',
    'printf "hello from python\\n" > S/src/c.py',
    'printf "hel\\0lo hello\\n" > S/docs/bin.dat',
    'printf "hidden hello\\n" > S/.hidden/h.txt',
    'for i in $(seq 1 30); do echo "line $i hello" >> S/docs/many.txt; done',
  ].join(' && ');

  beforeAll(async () => {
    await shell(tree, { cwd: '/home/agent' });
    await shell(tree, { cwd: '/home/agent' }, grepSandbox.sandbox_id);
  });

  const search = (id: string, json: Record<string, unknown>) =>
    api<WireSearch>('POST', `${files(id)}/search`, { json: { path: '/home/agent/S', ...json } });

  it('ripgrep and the grep fallback give the same answers', async () => {
    const queries: Record<string, unknown>[] = [
      { pattern: 'hello' },
      { pattern: 'hello', ignore_case: true },
      { pattern: 'hello', glob: '*.ts' },
      { pattern: 'hello', glob: 'src/*' },
      { pattern: '^line \\d+ hello$', max_results: 5 },
      { pattern: 'h(e|a)l+o\\b', ignore_case: true, max_results: 10000 },
      { pattern: 'nomatch' },
      { pattern: 'hello', path: '/home/agent/S/src/a.ts' },
    ];
    for (const json of queries) {
      const rg = await search(sandbox.sandbox_id, json);
      const grep = await search(grepSandbox.sandbox_id, json);
      expect([json, rg.status, rg.body.engine]).toEqual([json, 200, 'rg']);
      expect([json, grep.status, grep.body.engine]).toEqual([json, 200, 'grep']);
      expect([json, rg.body.matches, rg.body.truncated]).toEqual([
        json,
        grep.body.matches,
        grep.body.truncated,
      ]);
    }
  });

  it('finds what it should, capped, with binary files read as text', async () => {
    const all = await search(sandbox.sandbox_id, { pattern: 'hello' });
    expect(all.body.matches.slice(0, 3)).toEqual([
      { path: '/home/agent/S/.hidden/h.txt', line: 1, text: 'hidden hello' },
      { path: '/home/agent/S/docs/bin.dat', line: 1, text: 'hel\0lo hello' },
      { path: '/home/agent/S/docs/many.txt', line: 1, text: 'line 1 hello' },
    ]);
    expect(all.body.truncated).toBe(false);
    const capped = await search(sandbox.sandbox_id, { pattern: 'hello', max_results: 2 });
    expect([capped.body.matches.length, capped.body.truncated]).toEqual([2, true]);
    const py = await search(sandbox.sandbox_id, {
      pattern: 'HELLO',
      glob: '*.py',
      ignore_case: true,
    });
    expect(py.body.matches).toEqual([
      { path: '/home/agent/S/src/c.py', line: 1, text: 'hello from python' },
    ]);
  });

  it('a pattern that does not compile is a 422; a folder agent may not read a 403', async () => {
    const bad = await search(sandbox.sandbox_id, { pattern: '(unclosed' });
    expect(bad.status).toBe(422);
    expect((await search(sandbox.sandbox_id, { pattern: 'x', path: '/root' })).status).toBe(403);
  });
});

describe('archives', () => {
  it('a directory goes out as a tar made by the user, and a tar comes in as the user', async () => {
    await shell(
      'mkdir -p /home/agent/arc/sub && printf abc > /home/agent/arc/a && printf 12345 > /home/agent/arc/sub/b',
    );
    const out = await raw('GET', `${files()}/archive?${query({ path: '/home/agent/arc' })}`);
    expect(out.status).toBe(200);
    expect(out.headers.get('content-type')).toBe('application/x-tar');
    const names: string[] = [];
    for await (const entry of Readable.from([out.bytes]).pipe(tar.extract())) {
      names.push(`${entry.header.name} ${entry.header.uname}`);
      entry.resume();
    }
    expect(names.sort()).toEqual(['./ agent', './a agent', './sub/ agent', './sub/b agent']);

    const pack = tar.pack();
    pack.entry({ name: 'x/y.bin', mode: 0o640, uid: 0, gid: 0 }, binary(1000));
    pack.entry({ name: 'z.txt' }, 'zz');
    pack.finalize();
    const body = Buffer.concat(await Readable.from(pack).toArray());
    const extracted = await raw(
      'PUT',
      `${files()}/archive?${query({ path: '/home/agent/unpacked/here' })}`,
      body,
      'application/x-tar',
    );
    expect(extracted.status).toBe(200);
    expect(JSON.parse(extracted.bytes.toString())).toEqual({
      path: '/home/agent/unpacked/here',
      files: 2,
      bytes: 1002,
    });
    expect(await shell('cd /home/agent/unpacked/here && stat -c "%n %U %a" x/y.bin z.txt')).toBe(
      'x/y.bin agent 640\nz.txt agent 644\n',
    );
    const denied = await raw('PUT', `${files()}/archive?${query({ path: '/etc/unpacked' })}`, body);
    expect(denied.status).toBe(403);
    const notTar = await raw(
      'PUT',
      `${files()}/archive?${query({ path: '/home/agent/u2' })}`,
      Buffer.from('no tar here, just some text that is long enough'),
    );
    expect(notTar.status).toBe(422);
  });
});

describe('atomic writes', () => {
  it.each([
    ['a large file', 2 * 1024 * 1024],
    ['a small file', 100 * 1024],
  ])(
    'a read during a write of %s sees the old bytes or the new ones, never a mix',
    async (_, size) => {
      const contents = [Buffer.alloc(size, 'a'), Buffer.alloc(size, 'b')];
      const path = `/home/agent/atomic-${size}`;
      await writeFile(path, contents[0] as Buffer);
      const seen = new Set<string>();
      for (let round = 1; round <= 6; round += 1) {
        const writing = writeFile(path, contents[round % 2] as Buffer);
        const reads = await Promise.all([1, 2, 3].map(() => readFile(path)));
        expect((await writing).status).toBe(200);
        for (const read of reads) {
          expect(read.status).toBe(200);
          const whole = contents.find((content) => content.equals(read.bytes));
          expect(whole).toBeDefined();
          seen.add(read.bytes.subarray(0, 1).toString());
        }
      }
      expect(seen.size).toBeGreaterThan(0);
    },
  );
});
