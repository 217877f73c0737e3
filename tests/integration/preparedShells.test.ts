import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DockerRuntime } from '../../lib/adapters/docker/dockerRuntime.js';
import { SANDBOX_ID_LABEL, USER_ID_LABEL } from '../../lib/domain/sandbox.js';
import { createLogger } from '../../lib/logger.js';
import type { ExecRequest } from '../../lib/ports.js';
import { testUser } from '../support/api.js';
import { docker } from '../support/docker.js';
import { until } from '../support/until.js';

/**
 * The Docker adapter on its own, against the real engine: a command run in a prepared shell must
 * be indistinguishable from one run in an exec of its own.
 */
const runtime = new DockerRuntime(docker, createLogger('ERROR', 'json'), {
  slowCallMs: 10_000,
  firstCommandUser: 'agent',
  maxOutputBytes: 1024 * 1024,
});
const name = `${testUser('shells')}-${process.pid}`;
let containerId = '';

const request = (command: string, extra: Partial<ExecRequest> = {}): ExecRequest => ({
  command,
  user: 'agent',
  timeoutSeconds: 30,
  maxOutputBytes: 1024 * 1024,
  ...extra,
});

/** The prepared shell's own command line, which no command of the tests contains as such. */
const SHELL_PATTERN = 'read -r matrx_secon[d]s';

/** The shells waiting in the sandbox, as `user pid`. */
async function preparedShells(): Promise<{ user: string; pid: number }[]> {
  const exec = await docker.getContainer(containerId).exec({
    Cmd: ['bash', '-c', `ps -eo user=,pid=,args= | grep -- '${SHELL_PATTERN}' || true`],
    User: 'root',
    AttachStdout: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on('data', (chunk: Buffer) => chunks.push(chunk));
  docker.modem.demuxStream(stream, output, new PassThrough().resume());
  await new Promise((resolve) => stream.once('end', resolve));
  return Buffer.concat(chunks)
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [user = '', pid = ''] = line.trim().split(/\s+/);
      return { user, pid: Number(pid) };
    });
}

/** Waits for the one shell prepared for `user`, and returns it. */
async function shellFor(user: string): Promise<{ user: string; pid: number }> {
  let found: { user: string; pid: number }[] = [];
  await until(
    `one shell is prepared for ${user}`,
    async () => {
      found = (await preparedShells()).filter((shell) => shell.user === user);
      return found.length === 1;
    },
    { timeoutMs: 10_000 },
  );
  return found[0] as { user: string; pid: number };
}

beforeAll(async () => {
  containerId = await runtime.create({
    name,
    image: process.env.MATRX_SANDBOX_IMAGE ?? 'matrx-sandbox:latest',
    labels: { [SANDBOX_ID_LABEL]: name, [USER_ID_LABEL]: testUser('shells') },
    env: {},
    cpuLimit: 1,
    memoryLimitBytes: 512 * 1024 ** 2,
    network: 'none',
  });
  const outcome = await runtime.startAndWaitReady(containerId, 60_000, () => undefined);
  expect(outcome).toEqual({ ready: true });
});

afterAll(async () => {
  runtime.close();
  await runtime.remove(containerId);
});

describe('prepared shells', () => {
  const environment =
    'id; pwd; echo "$HOME"; env | grep -v ^MATRX_EXEC_ID= | sort; readlink /proc/self/fd/0; ulimit -a';

  it('wait for the first command as soon as the sandbox is ready, as the default user', async () => {
    // The runtime starts it by itself: the service knows nothing of prepared shells.
    const first = await shellFor('agent');
    const ran = await runtime.exec(containerId, request('echo $PPID'));
    expect(ran.stdout.trim()).toBe(String(first.pid));
  });

  it('run a command as its own exec would: user, directory, environment, stdin, limits', async () => {
    const own = await runtime.exec(containerId, request(environment, { user: 'root' }));
    await shellFor('root');
    const prepared = await runtime.exec(containerId, request(environment, { user: 'root' }));
    expect(prepared).toEqual(own);
    expect(own.stdout).toContain('uid=0(root)');

    await shellFor('root');
    const agentOwn = await runtime.exec(containerId, request(environment));
    await shellFor('agent');
    const agentPrepared = await runtime.exec(containerId, request(environment));
    expect(agentPrepared).toEqual(agentOwn);
    expect(agentOwn.stdout).toContain('uid=1000(agent)');
    expect(agentOwn.stdout).toContain('/dev/null');
  });

  it('take the next command: it runs in the shell prepared for it', async () => {
    await runtime.exec(containerId, request('true'));
    const shell = await shellFor('agent');
    // The shell became the command's `timeout`, the parent of its bash.
    const ran = await runtime.exec(containerId, request('echo $PPID'));
    expect(ran.stdout).toBe(`${shell?.pid}\n`);
  });

  it('leave a long command to an exec of its own, which reads it faster', async () => {
    await runtime.exec(containerId, request('true'));
    const shell = await shellFor('agent');
    const ran = await runtime.exec(containerId, request(`: '${'x'.repeat(70_000)}'; echo $PPID`));
    expect(ran.exitCode).toBe(0);
    expect(ran.stdout).toMatch(/^\d+\n$/);
    expect(ran.stdout).not.toBe(`${shell.pid}\n`);
  });

  it('pass stdout, stderr, exit codes and caps through unchanged', async () => {
    await runtime.exec(containerId, request('true'));
    await shellFor('agent');
    const ran = await runtime.exec(
      containerId,
      request("printf '+x'; printf 'héllo' >&2; head -c 5000 /dev/zero | tr '\\0' a; exit 7", {
        maxOutputBytes: 4096,
      }),
    );
    // The cap differs from the prepared shell's, so this one ran in an exec of its own; the next
    // finds a shell prepared with it.
    await shellFor('agent');
    const again = await runtime.exec(
      containerId,
      request("printf '+x'; printf 'héllo' >&2; head -c 5000 /dev/zero | tr '\\0' a; exit 7", {
        maxOutputBytes: 4096,
      }),
    );
    expect(again).toEqual(ran);
    expect(ran).toMatchObject({
      exitCode: 7,
      stderr: 'héllo',
      stdoutTruncated: true,
      stderrTruncated: false,
      timedOut: false,
    });
    expect(ran.stdout.startsWith('+xaaa')).toBe(true);
    expect(ran.stdout).toHaveLength(4096);
  });

  it('a shell killed before its command arrives is not mistaken for the command: it runs once', async () => {
    await runtime.exec(containerId, request('rm -f /tmp/ran-once'));
    await shellFor('agent');
    // As a sandbox user's `kill -9 -1` would.
    const killer = await docker.getContainer(containerId).exec({
      Cmd: ['pkill', '-9', '-f', SHELL_PATTERN],
      User: 'agent',
    });
    await killer
      .start({ hijack: true, stdin: false })
      .then((stream) => new Promise((resolve) => stream.once('end', resolve).resume()));
    // At once: whether or not the runtime has seen the shell end yet, the command runs once.
    const ran = await runtime.exec(
      containerId,
      request('echo run >> /tmp/ran-once; wc -l < /tmp/ran-once'),
    );
    expect(ran).toMatchObject({ exitCode: 0, stdout: '1\n' });
  });

  it('time out like any command: the tree is gone and the answer is 124', async () => {
    await runtime.exec(containerId, request('true'));
    const shell = await shellFor('agent');
    const started = Date.now();
    const ran = await runtime.exec(
      containerId,
      request('echo $PPID; sleep 611 & setsid sleep 612 & echo started; wait', {
        timeoutSeconds: 1,
      }),
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(ran).toMatchObject({
      exitCode: 124,
      timedOut: true,
      stdout: `${shell?.pid}\nstarted\n`,
    });
    const left = await runtime.exec(containerId, request("pgrep -c -f '^sleep 61[12]' || true"));
    expect(left.stdout.trim()).toBe('0');
  });

  it('end with the runtime: closing it leaves no shell waiting in the sandbox', async () => {
    await runtime.exec(containerId, request('true'));
    await shellFor('agent');
    runtime.close();
    await until('no shell is left', async () => (await preparedShells()).length === 0, {
      timeoutMs: 10_000,
    });
  });
});
