import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { api, testUser } from '../support/api.js';
import { createReady, deleteAll, exec, type WireSandbox } from '../support/sandboxes.js';
import { until } from '../support/until.js';

interface WireProcess {
  process_id: string;
  command: string;
  user: string;
  cwd: string;
  status: string;
  exit_code: number | null;
  started_at: string;
  ended_at: string | null;
}

interface WireOutput {
  stdout: string;
  stderr: string;
  stdout_offset: number;
  stderr_offset: number;
  status: string;
  exit_code: number | null;
}

const user = testUser('processes');
let sandbox: WireSandbox;
/** Every process this file started, oldest first: the list must have them all. */
const started: string[] = [];

beforeAll(async () => {
  sandbox = await createReady(user);
});
afterAll(() => deleteAll(user));

const processes = () => `/sandboxes/${sandbox.sandbox_id}/processes`;

async function start(command: string, extra: Record<string, unknown> = {}): Promise<WireProcess> {
  const reply = await api<WireProcess>('POST', processes(), { json: { command, ...extra } });
  expect(reply.status).toBe(201);
  expect(reply.body.process_id).toMatch(/^proc-[0-9a-f]{12}$/);
  started.push(reply.body.process_id);
  return reply.body;
}

function output(processId: string, query: Record<string, number> = {}) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) search.set(name, String(value));
  return api<WireOutput>('GET', `${processes()}/${processId}/output?${search}`);
}

function getProcess(processId: string) {
  return api<WireProcess>('GET', `${processes()}/${processId}`);
}

function kill(processId: string, signal?: string) {
  const query = signal === undefined ? '' : `?signal=${encodeURIComponent(signal)}`;
  return api<WireProcess>('DELETE', `${processes()}/${processId}${query}`);
}

/** Both streams, read from the offsets each answer gives until the process ended and no more came. */
async function readToEnd(processId: string): Promise<WireOutput> {
  let stdout = '';
  let stderr = '';
  let offsets = { stdout_offset: 0, stderr_offset: 0 };
  for (let reads = 0; reads < 60; reads += 1) {
    const read = await output(processId, { ...offsets, wait: 1 });
    expect(read.status).toBe(200);
    stdout += read.body.stdout;
    stderr += read.body.stderr;
    const nothingNew = read.body.stdout === '' && read.body.stderr === '';
    offsets = { stdout_offset: read.body.stdout_offset, stderr_offset: read.body.stderr_offset };
    if (read.body.status !== 'running' && nothingNew) return { ...read.body, stdout, stderr };
  }
  throw new Error(`process ${processId} had not ended after 60 reads`);
}

/** How many processes of the sandbox run exactly `sleep <seconds>`, whatever started them. */
async function sleepers(seconds: number): Promise<number> {
  // Anchored: grep's own line and the shells that run these commands start otherwise.
  const counted = await exec(
    sandbox.sandbox_id,
    `ps -eo args | grep -c '^sleep ${seconds}$' || true`,
  );
  expect(counted.status).toBe(200);
  return Number(counted.body.stdout.trim());
}

describe('background processes', () => {
  it('run in the background; their output reads to the end, each stream apart', async () => {
    const process = await start('echo hi; echo err >&2');
    expect(process).toMatchObject({ command: 'echo hi; echo err >&2', user: 'agent' });
    expect(process.cwd).toMatch(/^\//);
    const read = await readToEnd(process.process_id);
    expect(read).toMatchObject({ stdout: 'hi\n', stderr: 'err\n', status: 'exited', exit_code: 0 });
    const ended = await getProcess(process.process_id);
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ status: 'exited', exit_code: 0 });
    expect(ended.body.ended_at).not.toBeNull();
  });

  it('a user the image does not have is a 422, and the sandbox keeps its channel for the others', async () => {
    const refused = await api<{ detail: unknown }>('POST', processes(), {
      json: { command: 'true', user: 'ghost' },
    });
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toEqual([
      { loc: ['user'], msg: 'no user ghost in the sandbox', type: 'value_error' },
    ]);
    // An exec as that user answers as a plain engine exec does; nobody else is moved off the channel.
    const asGhost = await api<{ exit_code: number }>(
      'POST',
      `/sandboxes/${sandbox.sandbox_id}/exec`,
      {
        json: { command: 'true', user: 'ghost' },
      },
    );
    expect(asGhost.body.exit_code).toBe(126);
    const { process_id } = await start('echo still');
    expect((await readToEnd(process_id)).stdout).toBe('still\n');
  });

  it('start in the cwd and with the env they are given, with the umask of a plain exec', async () => {
    const process = await start('echo "$GREETING"; pwd; umask', {
      cwd: '/tmp',
      env: { GREETING: 'hello' },
    });
    expect(process.cwd).toBe('/tmp');
    expect((await readToEnd(process.process_id)).stdout).toBe('hello\n/tmp\n0022\n');
  });

  it('answer from the offsets asked, and nothing past the end', async () => {
    const { process_id } = await start('echo one');
    await readToEnd(process_id);
    const first = await output(process_id);
    expect(first.body).toMatchObject({ stdout: 'one\n', stdout_offset: 4, stderr_offset: 0 });
    const again = await output(process_id, {
      stdout_offset: first.body.stdout_offset,
      stderr_offset: first.body.stderr_offset,
    });
    expect(again.body).toMatchObject({ stdout: '', stderr: '', stdout_offset: 4 });
    const tail = await output(process_id, { stdout_offset: 2 });
    expect(tail.body.stdout).toBe('e\n');
  });

  it('keep at most MATRX_PROCESS_OUTPUT_BYTES per stream: an offset before it reads from the first byte kept', async () => {
    // 400 KiB of numbered lines, past the server's 128 KiB, and a character that is 2 bytes.
    const { process_id } = await start("seq -w 1 70000 | head -c 409600; printf 'é'");
    await readToEnd(process_id);
    const first = await output(process_id);
    expect(first.body.status).toBe('exited');
    const kept = Buffer.byteLength(first.body.stdout);
    expect(first.body.stdout_offset).toBe(409602);
    expect(kept).toBeLessThanOrEqual(128 * 1024);
    expect(kept).toBeGreaterThanOrEqual(64 * 1024);
    expect(first.body.stdout.endsWith('é')).toBe(true);
    // Starts where a segment starts: what it shows is the stream's own bytes from there.
    const from = 409602 - kept;
    const all = Array.from({ length: 70000 }, (_, i) => `${String(i + 1).padStart(5, '0')}\n`)
      .join('')
      .slice(0, 409600);
    expect(first.body.stdout).toBe(`${all.slice(from)}é`);
  });

  it('long-poll: a wait answers as soon as output comes, not at its end', async () => {
    const { process_id } = await start('sleep 1; echo late');
    const asked = Date.now();
    const read = await output(process_id, { wait: 5 });
    expect(read.status).toBe(200);
    expect(read.body.stdout).toBe('late\n');
    // Loose on purpose: the output comes after about 1 s, the wait would end at 5 s.
    expect(Date.now() - asked).toBeLessThan(4000);
  });

  it('a wait with no output ends at its time, the process still running', async () => {
    const { process_id } = await start('sleep 304');
    const asked = Date.now();
    const read = await output(process_id, { wait: 1 });
    const waited = Date.now() - asked;
    expect(read.body).toMatchObject({ stdout: '', stderr: '', status: 'running', exit_code: null });
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(5000);
    expect((await kill(process_id, 'KILL')).status).toBe(200);
  });

  it('take stdin, and end when it is closed', async () => {
    const { process_id } = await start('cat');
    const wrote = await api<WireProcess>('POST', `${processes()}/${process_id}/stdin`, {
      json: { data: 'abc' },
    });
    expect(wrote.status).toBe(200);
    expect(wrote.body.status).toBe('running');
    const closed = await api('POST', `${processes()}/${process_id}/stdin`, {
      json: { data: '', eof: true },
    });
    expect(closed.status).toBe(200);
    expect(await readToEnd(process_id)).toMatchObject({
      stdout: 'abc',
      status: 'exited',
      exit_code: 0,
    });
    const late = await api('POST', `${processes()}/${process_id}/stdin`, { json: { data: 'x' } });
    expect(late.status).toBe(409);
    expect(late.body).toEqual({ detail: expect.any(String) });
  });

  it('a TERM kills the process and what it started, setsid included, before the answer', async () => {
    const { process_id } = await start('setsid sleep 300 & sleep 300');
    await until('both sleeps run', async () => (await sleepers(300)) === 2, { timeoutMs: 10_000 });
    const killed = await kill(process_id);
    expect(killed.status).toBe(200);
    expect(killed.body.status).toBe('killed');
    expect(killed.body.ended_at).not.toBeNull();
    expect(await sleepers(300)).toBe(0);
  });

  it('a TERM that is ignored is followed by a KILL after 5 s', async () => {
    const { process_id } = await start("trap '' TERM; sleep 303");
    await until('the sleep runs', async () => (await sleepers(303)) === 1, { timeoutMs: 10_000 });
    const asked = Date.now();
    const killed = await kill(process_id, 'TERM');
    expect(killed.body.status).toBe('killed');
    expect(Date.now() - asked).toBeGreaterThanOrEqual(4500);
    expect(await sleepers(303)).toBe(0);
  });

  it('a KILL kills at once', async () => {
    const { process_id } = await start('sleep 302');
    await until('the sleep runs', async () => (await sleepers(302)) === 1, { timeoutMs: 10_000 });
    const killed = await kill(process_id, 'KILL');
    expect(killed.status).toBe(200);
    expect(killed.body.status).toBe('killed');
    expect(await sleepers(302)).toBe(0);
  });

  it('past its timeout a process is timed_out', async () => {
    const { process_id } = await start('sleep 30', { timeout: 1 });
    await until(
      'the process timed out',
      async () => (await getProcess(process_id)).body.status === 'timed_out',
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    expect((await getProcess(process_id)).body.exit_code).not.toBeNull();
  });

  it('are listed, oldest first', async () => {
    const listed = await api<{ processes: WireProcess[] }>('GET', processes());
    expect(listed.status).toBe(200);
    const ids = listed.body.processes.map((p) => p.process_id);
    expect(ids.filter((id) => started.includes(id))).toEqual(started);
  });
});

describe('process requests that are refused', () => {
  it('an unknown process, or an id that cannot be one, is a 404 naming it', async () => {
    for (const id of ['nope', 'proc-000000000000']) {
      const missing = await getProcess(id);
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ detail: `Process ${id} not found` });
    }
    const output404 = await output('proc-000000000000');
    expect(output404.status).toBe(404);
  });

  it('an unknown sandbox is its own 404', async () => {
    const missing = await api('GET', '/sandboxes/sbx-000000000000/processes/proc-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ detail: 'Sandbox sbx-000000000000 not found' });
  });

  it('a signal other than TERM or KILL is a 422', async () => {
    const refused = await kill('proc-000000000000', 'HUP');
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ detail: [{ loc: ['query', 'signal'] }] });
  });

  it('a relative cwd, a bad timeout or a bad wait is a 422', async () => {
    const relative = await api('POST', processes(), { json: { command: 'pwd', cwd: 'tmp' } });
    expect(relative.status).toBe(422);
    const long = await api('POST', processes(), { json: { command: 'pwd', timeout: 86_401 } });
    expect(long.status).toBe(422);
    const wait = await output('proc-000000000000', { wait: 21 });
    expect(wait.status).toBe(422);
  });

  it('a sandbox that has ended is a 409', async () => {
    const other = await createReady(user);
    const gone = await api('DELETE', `/sandboxes/${other.sandbox_id}?graceful=false`);
    expect(gone.status).toBe(204);
    const listed = await api('GET', `/sandboxes/${other.sandbox_id}/processes`);
    expect(listed.status).toBe(409);
    const startedLate = await api('POST', `/sandboxes/${other.sandbox_id}/processes`, {
      json: { command: 'true' },
    });
    expect(startedLate.status).toBe(409);
  });
});
