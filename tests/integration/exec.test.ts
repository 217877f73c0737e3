import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testUser } from '../support/api.js';
import { createReady, deleteAll, exec, type WireSandbox } from '../support/sandboxes.js';

const user = testUser('exec');
let sandbox: WireSandbox;

beforeAll(async () => {
  sandbox = await createReady(user);
});
afterAll(() => deleteAll(user));

const COUNT_SLEEPERS = "ps -eo args | grep -c '^sleep 6[0-9][0-9]' || true";

describe('exec', () => {
  it('enforces its timeout: the command tree is gone and the answer is 124, timed_out', async () => {
    const started = Date.now();
    const ran = await exec(
      sandbox.sandbox_id,
      'sleep 600 & bash -c "sleep 601" & setsid sleep 602 & nohup sleep 603 >/dev/null 2>&1 & echo started; wait',
      { timeout: 2 },
    );
    const elapsed = Date.now() - started;
    expect(ran.status).toBe(200);
    expect(ran.body).toMatchObject({ exit_code: 124, timed_out: true, stdout: 'started\n' });
    // Loose bound on purpose: the limit is 2 s and the contract is about a second past it.
    expect(elapsed).toBeLessThan(6000);

    const left = await exec(sandbox.sandbox_id, COUNT_SLEEPERS);
    expect(left.body.stdout.trim()).toBe('0');
  });

  it('leaves the sandbox’s other commands alone when one times out', async () => {
    const long = exec(sandbox.sandbox_id, 'sleep 4; echo survived', { timeout: 30 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const short = await exec(sandbox.sandbox_id, 'sleep 650', { timeout: 1 });
    expect(short.body.timed_out).toBe(true);
    const survivor = await long;
    expect(survivor.body).toMatchObject({ exit_code: 0, stdout: 'survived\n', timed_out: false });
  });

  it('caps each stream at MATRX_MAX_OUTPUT_BYTES and says so', async () => {
    const ran = await exec(
      sandbox.sandbox_id,
      'head -c 3000000 /dev/zero | tr "\\0" a; echo small >&2',
    );
    expect(ran.status).toBe(200);
    expect(ran.body.stdout.length).toBe(1024 * 1024);
    expect(ran.body.stdout_truncated).toBe(true);
    expect(ran.body).toMatchObject({ stderr: 'small\n', stderr_truncated: false, exit_code: 0 });
  });

  it('passes bytes and exit codes through unchanged', async () => {
    const ran = await exec(sandbox.sandbox_id, "printf 'héllo\\n'; false");
    expect(ran.body).toMatchObject({ stdout: 'héllo\n', exit_code: 1 });
    const killed = await exec(sandbox.sandbox_id, 'kill -9 $$');
    expect(killed.body.exit_code).toBe(137);
    expect(killed.body.timed_out).toBe(false);
  });

  it('starts where the last command ended, takes cwd, env and stdin, and says where it ended', async () => {
    const id = sandbox.sandbox_id;
    expect((await exec(id, 'mkdir -p /tmp/exec-cwd && cd /tmp/exec-cwd')).body.cwd).toBe(
      '/tmp/exec-cwd',
    );
    const ran = await exec(id, 'pwd; echo "$GREETING"; od -An -c', {
      env: { GREETING: 'hello there' },
      stdin: 'a\0b',
    });
    expect(ran.body).toMatchObject({
      exit_code: 0,
      stdout: '/tmp/exec-cwd\nhello there\n   a  \\0   b\n',
      cwd: '/tmp/exec-cwd',
    });
    expect(ran.body.duration_ms).toBeGreaterThanOrEqual(0);
    const elsewhere = await exec(id, 'pwd', { cwd: '/etc' });
    expect(elsewhere.body).toMatchObject({ stdout: '/etc\n', cwd: '/etc' });
    const missing = await exec(id, 'pwd', { cwd: '/no/such/dir' });
    expect(missing.status).toBe(200);
    expect(missing.body).toMatchObject({ exit_code: 1, stdout: '', cwd: '/etc' });
    expect(missing.body.stderr).toContain('/no/such/dir: No such file or directory');
  });
});
