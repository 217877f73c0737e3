import { createHash, randomBytes } from 'node:crypto';
import { closeSync, readSync, writeSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Channel } from '../../lib/adapters/docker/channel/channel.js';
import { COMPILED_CHANNEL_PATH } from '../../lib/adapters/docker/channel/script.js';
import { DockerRuntime } from '../../lib/adapters/docker/dockerRuntime.js';
import { HOST_ID_LABEL, SANDBOX_ID_LABEL, USER_ID_LABEL } from '../../lib/domain/sandbox.js';
import { createLogger } from '../../lib/logger.js';
import type { ExecRequest } from '../../lib/ports.js';
import { testUser } from '../support/api.js';
import { docker } from '../support/docker.js';
import { until } from '../support/until.js';

/**
 * The Docker adapter on its own, against the real engine: a command run through the sandbox's
 * channel must be indistinguishable from one run in an engine exec of its own.
 */
const runtime = new DockerRuntime(docker, createLogger('ERROR', 'json'), {
  slowCallMs: 10_000,
  firstCommandUser: 'agent',
  processOutputBytes: 1024 * 1024,
  diskLimitBytes: 20 * 1024 ** 3,
  diskProbeImage: process.env.MATRX_SANDBOX_IMAGE ?? 'matrx-sandbox:latest',
});
const name = `${testUser('channel')}-${process.pid}`;
let containerId = '';

const request = (command: string, extra: Partial<ExecRequest> = {}): ExecRequest => ({
  command,
  user: 'agent',
  timeoutSeconds: 30,
  maxOutputBytes: 1024 * 1024,
  ...extra,
});

/** Runs a command in an engine exec of its own, as root: what the tests look with. */
async function inspect(command: string, user = 'root'): Promise<string> {
  const exec = await docker.getContainer(containerId).exec({
    Cmd: ['bash', '-c', command],
    User: user,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on('data', (chunk: Buffer) => chunks.push(chunk));
  docker.modem.demuxStream(stream, output, output);
  await new Promise((resolve) => stream.once('end', resolve));
  return Buffer.concat(chunks).toString();
}

/** `bash -c COMMAND` in an engine exec of its own, stdin closed: what a channel must match. */
async function engineExec(command: string, user: string, cwd: string) {
  const exec = await docker.getContainer(containerId).exec({
    Cmd: ['bash', '-c', command],
    User: user,
    WorkingDir: cwd,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const streams = { stdout: new PassThrough(), stderr: new PassThrough() };
  const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  streams.stdout.on('data', (chunk: Buffer) => chunks.stdout.push(chunk));
  streams.stderr.on('data', (chunk: Buffer) => chunks.stderr.push(chunk));
  docker.modem.demuxStream(stream, streams.stdout, streams.stderr);
  await new Promise((resolve) => stream.once('end', resolve));
  const { ExitCode } = await exec.inspect();
  return {
    stdout: Buffer.concat(chunks.stdout).toString(),
    stderr: Buffer.concat(chunks.stderr).toString(),
    exitCode: ExitCode,
  };
}

/** The channels running in the sandbox, as `user pid`. */
async function channels(): Promise<string[]> {
  const listed = await inspect("ps -eo user=,pid=,args= | grep '[m]atrx-channel' || true");
  return listed
    .split('\n')
    .filter(Boolean)
    .map((line) => line.trim().split(/\s+/).slice(0, 2).join(' '));
}

beforeAll(async () => {
  containerId = await runtime.create({
    name,
    image: process.env.MATRX_SANDBOX_IMAGE ?? 'matrx-sandbox:latest',
    // A host of its own: a server on the engine adopts containers of its host or of none.
    labels: {
      [SANDBOX_ID_LABEL]: name,
      [USER_ID_LABEL]: testUser('channel'),
      [HOST_ID_LABEL]: `${name}-host`,
    },
    env: { FROM_CONFIG: 'config value' },
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

/** The compiled channel as agent, over its own pipes unless `openPipes` says this side cannot. */
function openCompiled(openPipes?: () => undefined) {
  return Channel.open(docker, containerId, 'agent', [COMPILED_CHANNEL_PATH], {
    offersPipes: true,
    openPipes,
  });
}

describe('the command channel', () => {
  const environment =
    'id; pwd; echo "$HOME"; env | grep -v -e ^MATRX_EXEC_ID= -e ^_= | sort; readlink /proc/self/fd/0; ulimit -a; umask; echo "$0 $SHLVL"';

  it('opens as soon as the sandbox is ready, as the default user', async () => {
    await until('the agent channel runs', async () => (await channels()).length === 1, {
      timeoutMs: 10_000,
    });
    expect((await channels())[0]).toMatch(/^agent \d+$/);
    expect(runtime.channelStats()).toEqual({ open: 1, fallback: 0, direct: 1 });
  });

  it('runs a command as an engine exec of its own would: user, groups, home, environment, stdin, limits', async () => {
    for (const user of ['agent', 'root']) {
      const own = await inspect(environment, user);
      const ran = await runtime.exec(
        containerId,
        request(environment, { user, cwd: '/home/agent' }),
      );
      expect(ran).toMatchObject({ exitCode: 0, stderr: '', cwd: '/home/agent' });
      expect(ran.stdout).toBe(own);
    }
    expect(await channels()).toHaveLength(2);
  });

  it('runs commands, in a spare or forked, as the first the kernel kills when memory runs out', async () => {
    // The channel maps more pages than a small bash: without the bias a fork bomb that fills the
    // memory limit had the kernel kill the channel, and the command's answer with it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const spare = await runtime.exec(
      containerId,
      request('read -r own </proc/self/oom_score_adj; echo "$own"'),
    );
    const forked = await runtime.exec(
      containerId,
      request('cat /proc/self/oom_score_adj /proc/$PPID/oom_score_adj /proc/$PPID/comm'),
    );
    expect([spare.stdout, forked.stdout]).toEqual(['100\n', '100\n0\nmatrx-channel\n']);
  });

  it('runs a command in a shell started ahead with what a fresh bash -c gives: environment, messages, line numbers', async () => {
    const spare = 'ps -o args= -p $$ | grep -c __m_f';
    const commands = [
      'id; pwd; echo "$HOME"; env | grep -v -e ^MATRX_EXEC_ID= -e ^_= | sort; cat; ulimit -a; umask; echo "$0 $SHLVL $- $#"',
      'nosuch-command; echo "$? $LINENO"',
      'echo one\nfalse\necho "$LINENO $_"; return 3',
      'local x=1; shift; echo "${FUNCNAME[@]-none} $(caller || echo top)"; exit 5',
      'if then',
      'cat <<END\nno end',
    ];
    for (const user of ['agent', 'root']) {
      // After a pause, so that the channel has its spare.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const took = await runtime.exec(containerId, request(spare, { user, cwd: '/home/agent' }));
      expect(took.stdout).toBe('1\n');
      for (const command of commands) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const own = await engineExec(command, user, '/home/agent');
        const ran = await runtime.exec(containerId, request(command, { user, cwd: '/home/agent' }));
        const { stdout, stderr, exitCode } = ran;
        expect({ command, user, stdout, stderr, exitCode }).toEqual({ command, user, ...own });
      }
    }
  });

  it('keeps the cwd between commands, reports it, and takes cwd, env and stdin', async () => {
    await runtime.exec(containerId, request('cd /tmp'));
    const pwd = await runtime.exec(containerId, request('pwd'));
    expect(pwd).toMatchObject({ stdout: '/tmp\n', cwd: '/tmp' });
    const moved = await runtime.exec(containerId, request('cd /etc; echo moved', { cwd: '/usr' }));
    expect(moved).toMatchObject({ stdout: 'moved\n', cwd: '/etc' });
    const env = await runtime.exec(
      containerId,
      request('echo "$GREETING|$FROM_CONFIG"; cat', {
        env: { GREETING: 'it\'s a "test"\nline', FROM_CONFIG: 'overridden' },
        stdin: 'from stdin\n',
      }),
    );
    expect(env).toMatchObject({
      stdout: 'it\'s a "test"\nline|overridden\nfrom stdin\n',
      cwd: '/etc',
    });
    const missing = await runtime.exec(containerId, request('echo never', { cwd: '/nowhere' }));
    expect(missing).toMatchObject({ exitCode: 1, stdout: '', cwd: '/etc' });
    expect(missing.stderr).toContain('/nowhere: No such file or directory');
    // An implicit cwd that has gone: the next command starts at home.
    await runtime.exec(containerId, request('mkdir -p /tmp/gone && cd /tmp/gone'));
    await runtime.exec(containerId, request('rmdir /tmp/gone', { cwd: '/tmp' }));
    await runtime.exec(containerId, request('cd /tmp/gone 2>/dev/null || cd /tmp/gone-not'));
    const after = await runtime.exec(containerId, request('rmdir /tmp/gone 2>/dev/null; pwd'));
    expect(after.exitCode).toBe(0);
  });

  it("runs the service's own operations where the sandbox is, without moving its cwd", async () => {
    await runtime.exec(containerId, request('cd /usr'));
    const own = await runtime.exec(containerId, request('pwd; cd /etc', { keepCwd: true }));
    expect(own).toMatchObject({ stdout: '/usr\n', cwd: '/usr' });
    expect(await runtime.exec(containerId, request('pwd'))).toMatchObject({ stdout: '/usr\n' });
  });

  it('passes stdout, stderr, exit codes, binary bytes and caps through unchanged', async () => {
    const ran = await runtime.exec(
      containerId,
      request("printf '+x'; printf 'héllo' >&2; head -c 5000 /dev/zero | tr '\\0' a; exit 7", {
        maxOutputBytes: 4096,
      }),
    );
    expect(ran).toMatchObject({
      exitCode: 7,
      stderr: 'héllo',
      stdoutTruncated: true,
      stderrTruncated: false,
      timedOut: false,
    });
    expect(ran.stdout.startsWith('+xaaa')).toBe(true);
    expect(ran.stdout).toHaveLength(4096);
    const nul = await runtime.exec(containerId, request("printf 'a\\0b'"));
    expect(nul.stdout).toBe('a\0b');
  });

  it('answers when the command ends, while what it left running goes on writing to its stdout', async () => {
    const ran = await runtime.exec(
      containerId,
      request(
        '(for i in $(seq 20); do echo "$i"; sleep 0.05; done; touch /tmp/writer-done) & echo started',
      ),
    );
    expect(ran).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^started\n/) });
    // The writer takes a second or more: the answer did not wait for it.
    expect(await inspect('test -e /tmp/writer-done && echo done || echo running')).toBe(
      'running\n',
    );
    await until(
      'the writer finishes (no SIGPIPE)',
      async () =>
        (await inspect('test -e /tmp/writer-done && echo done || true')).trim() === 'done',
      { timeoutMs: 10_000 },
    );
  });

  it('runs 20 commands at once, each with its own output', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        runtime.exec(
          containerId,
          request(
            `sleep 0.$((RANDOM % 5)); echo out-${index}; echo err-${index} >&2; exit ${index}`,
          ),
        ),
      ),
    );
    results.forEach((result, index) => {
      expect(result).toMatchObject({
        exitCode: index,
        stdout: `out-${index}\n`,
        stderr: `err-${index}\n`,
      });
    });
  });

  it('times out like any command: the whole tree is gone and the answer is 124', async () => {
    const started = Date.now();
    const ran = await runtime.exec(
      containerId,
      request(
        'sleep 611 & setsid sleep 612 & nohup sleep 613 >/dev/null 2>&1 & echo started; wait',
        {
          timeoutSeconds: 1,
        },
      ),
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(ran).toMatchObject({ exitCode: 124, timedOut: true, stdout: 'started\n' });
    const left = await inspect("pgrep -c -f '^sleep 61[123]' || true");
    expect(left.trim()).toBe('0');
  });

  it('opens again when its process is killed from inside the sandbox, and ends what it ran', async () => {
    await runtime.exec(containerId, request('true'));
    const orphan = runtime.exec(containerId, request('sleep 615', { timeoutSeconds: 60 }));
    await until(
      'the command runs',
      async () => (await inspect('pgrep -c -x sleep || true')).trim() !== '0',
      {
        timeoutMs: 10_000,
      },
    );
    const before = await channels();
    await inspect('pkill -9 -f matrx-channel');
    await expect(orphan).rejects.toThrow(/command channel ended while the command ran/);
    const ran = await runtime.exec(containerId, request('echo back; pwd'));
    expect(ran).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^back\n/) });
    const after = await channels();
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    await until(
      'the orphan is gone',
      async () => (await inspect("pgrep -c -f '^sleep 615' || true")).trim() === '0',
      {
        timeoutMs: 10_000,
      },
    );
  });

  it('is replaced when it stops answering (stopped from inside the sandbox)', async () => {
    const stopped = await runtime.exec(
      containerId,
      request('kill -STOP $PPID', { timeoutSeconds: 1 }),
    );
    expect(stopped).toMatchObject({ exitCode: 124, timedOut: true });
    // The answer's timeout (20 s) ends the stopped channel; the next command opens a new one.
    await until(
      'a new channel answers',
      async () => {
        const ran = await runtime
          .exec(containerId, request('echo back', { timeoutSeconds: 1 }))
          .catch(() => undefined); // the stopped channel's end fails what it held
        return ran?.stdout === 'back\n';
      },
      { timeoutMs: 40_000 },
    );
    await inspect(
      "ps -eo pid=,stat=,args= | awk '$2 ~ /^T/ && /matrx-channel/ {print $1}' | xargs -r kill -9",
    );
  }, 60_000);

  it('falls back to a plain engine exec when the channel cannot start, and counts it', async () => {
    await inspect('chmod 0 /run/matrx/u; pkill -9 -f matrx-channel; rm -rf /run/matrx/u/1000');
    await until('the channels are gone', async () => (await channels()).length === 0, {
      timeoutMs: 10_000,
    });
    const ran = await runtime.exec(
      containerId,
      request('cd /var; echo "$GREETING"; cat', { env: { GREETING: 'hi' }, stdin: 'in' }),
    );
    expect(ran).toMatchObject({ exitCode: 0, stdout: 'hi\nin', stderr: '', cwd: '/var' });
    expect(runtime.channelStats().fallback).toBe(1);
    // A plain engine exec of the script's `--once` mode: the command's parent is its `timeout`.
    const parent = await runtime.exec(containerId, request('cat /proc/$PPID/comm'));
    expect(parent.stdout).toBe('timeout\n');
    const pwd = await runtime.exec(containerId, request('pwd'));
    expect(pwd).toMatchObject({ stdout: '/var\n', cwd: '/var' });
    const timedOut = await runtime.exec(
      containerId,
      request('setsid sleep 614 & echo started; wait', { timeoutSeconds: 1 }),
    );
    expect(timedOut).toMatchObject({ exitCode: 124, timedOut: true, stdout: 'started\n' });
    expect((await inspect("pgrep -c -f '^sleep 614' || true")).trim()).toBe('0');
    await inspect('chmod 1777 /run/matrx/u');
  });

  it('talks over its own pipes where the service can open them, and over its Docker exec where not', async () => {
    for (const openPipes of [undefined, () => undefined]) {
      const { channel } = await openCompiled(openPipes);
      try {
        expect(channel.direct).toBe(openPipes === undefined);
        const ran = await channel.exec(
          request('cat /proc/$PPID/comm; echo oops >&2; exit 3'),
          { cwd: '/tmp', implicit: false, kept: true },
          30,
        );
        expect(ran).toMatchObject({ exitCode: 3, stdout: 'matrx-channel\n', stderr: 'oops\n' });
        await channel.ping();
      } finally {
        channel.close();
      }
    }
  });

  it('writes an upload into a new file as its user, by this side or piece by piece, never over a file or a symlink', async () => {
    for (const openPipes of [undefined, () => undefined]) {
      const { channel } = await openCompiled(openPipes);
      try {
        await inspect('rm -rf /tmp/up && mkdir /tmp/up && chown agent /tmp/up', 'root');
        const bytes = randomBytes(3 * 1024 * 1024 + 17);
        const opened = await channel.openUpload('one', '/tmp/up/file', 0o640);
        expect(opened).toEqual({ size: 0, local: channel.direct ? expect.any(Number) : undefined });
        const local = 'local' in opened ? opened.local : undefined;
        if (local === undefined) {
          for (let at = 0; at < bytes.length; at += 1024 * 1024) {
            const piece = bytes.subarray(at, at + 1024 * 1024);
            await channel.uploadPiece('one', [piece.subarray(0, 100), piece.subarray(100)]);
          }
          // Other requests pass between the pieces.
          await channel.ping();
          expect(await channel.closeFile('one')).toBeUndefined();
        } else {
          writeSync(local, bytes);
          closeSync(local);
          // This side's descriptor is its own: the channel's is closed.
          expect(await channel.closeFile('one')).toBe('unknown');
        }
        expect(await inspect('stat -c "%U %a %s" /tmp/up/file; sha256sum </tmp/up/file')).toBe(
          `agent 640 ${bytes.length}\n${createHash('sha256').update(bytes).digest('hex')}  -\n`,
        );
        await inspect('ln -s /etc/passwd /tmp/up/link', 'agent');
        expect(await channel.openUpload('two', '/tmp/up/file', 0o644)).toEqual({
          refused: 'File exists',
        });
        expect(await channel.openUpload('three', '/tmp/up/link', 0o644)).toEqual({
          refused: 'File exists',
        });
        expect(await channel.openUpload('four', '/etc/x', 0o644)).toEqual({
          refused: 'Permission denied',
        });
        expect(await channel.closeFile('two')).toBe('unknown');
      } finally {
        channel.close();
      }
    }
  });

  it('opens a file for this side to read as its user, and only a regular file the user may read', async () => {
    const { channel } = await openCompiled();
    try {
      expect(channel.direct).toBe(true);
      await inspect(
        'rm -rf /tmp/rd && mkdir /tmp/rd && printf hello > /tmp/rd/open && chmod 644 /tmp/rd/open && ' +
          'printf secret > /tmp/rd/closed && chmod 600 /tmp/rd/closed && mkfifo -m 666 /tmp/rd/fifo',
        'root',
      );
      const opened = await channel.openForReading('one', '/tmp/rd/open');
      expect(opened).toEqual({ size: 5, local: expect.any(Number) });
      const local = 'local' in opened ? (opened.local as number) : -1;
      const read = Buffer.alloc(16);
      expect(read.subarray(0, readSync(local, read)).toString()).toBe('hello');
      closeSync(local);
      expect(await channel.closeFile('one')).toBe('unknown');
      expect(await channel.openForReading('two', '/tmp/rd/closed')).toEqual({
        refused: 'Permission denied',
      });
      expect(await channel.openForReading('three', '/tmp/rd')).toEqual({
        refused: 'not a regular file',
      });
      // A FIFO is opened without waiting for a writer, and refused.
      expect(await channel.openForReading('four', '/tmp/rd/fifo')).toEqual({
        refused: 'not a regular file',
      });
      expect(await channel.openForReading('five', '/tmp/rd/none')).toEqual({
        refused: 'No such file or directory',
      });
      // Its user cannot reach the channel's descriptors (nor trace it) to swap a file in.
      expect(
        await inspect('ls /proc/$(pgrep -o -u agent -x matrx-channel)/fd 2>&1 >/dev/null', 'agent'),
      ).toContain('Permission denied');
    } finally {
      channel.close();
    }
    const { channel: overStdio } = await openCompiled(() => undefined);
    try {
      expect(await overStdio.openForReading('one', '/tmp/rd/open')).toEqual({
        refused: "this side cannot open the channel's files",
      });
      await overStdio.ping();
    } finally {
      overStdio.close();
    }
  });

  it('puts a written file in place with one rename as its user, and leaves to the script what needs its care', async () => {
    const { channel } = await openCompiled();
    try {
      await inspect(
        'rm -rf /tmp/mv /dev/shm/mv && mkdir -p /tmp/mv/closed /tmp/mv/dir /dev/shm/mv && ' +
          'printf old > /tmp/mv/kept && printf ro > /tmp/mv/readonly && chmod 444 /tmp/mv/readonly && ' +
          'chown -R agent /tmp/mv /dev/shm/mv && chown root /tmp/mv/closed',
        'root',
      );
      const stage = async (name: string) => {
        await inspect(`printf new > /tmp/mv/${name} && chmod 640 /tmp/mv/${name}`, 'agent');
        return `/tmp/mv/${name}`;
      };
      expect(await channel.moveIntoPlace(await stage('one'), '/tmp/mv/kept')).toEqual([
        'f',
        '3',
        '640',
        expect.stringMatching(/^\d+\.\d{9}$/),
        '',
        '/tmp/mv/kept',
      ]);
      // The old file's second name, kept through the rename, goes after the answer.
      await until(
        'the old file is removed',
        async () => !(await inspect('ls /tmp/mv')).includes('.old'),
      );
      expect(await inspect('stat -c "%U %a" /tmp/mv/kept; cat /tmp/mv/kept')).toBe(
        'agent 640\nnew',
      );
      // A folder to make, a folder at the target, files and folders the user may not write,
      // another file system: the script's, and the staged file is as it was.
      for (const target of [
        '/tmp/mv/none/file',
        '/tmp/mv/dir',
        '/tmp/mv/readonly',
        '/tmp/mv/closed/file',
        '/dev/shm/mv/file',
        'relative',
        '/tmp/mv/',
      ]) {
        const staged = await stage('two');
        expect([target, await channel.moveIntoPlace(staged, target)]).toEqual([target, undefined]);
        expect(
          await inspect(
            `cat ${staged}; ls -A /tmp/mv/dir; ls -A /dev/shm/mv; cat /tmp/mv/readonly`,
          ),
        ).toBe('newro');
      }
      await channel.ping();
    } finally {
      channel.close();
    }
  });

  it("kills every process of its user but itself when asked (the sandbox ends), and no one else's", async () => {
    const { channel } = await openCompiled();
    try {
      await inspect(
        'setsid nohup sleep 771 >/dev/null 2>&1 & sleep 772 >/dev/null 2>&1 &',
        'agent',
      );
      await inspect('setsid nohup sleep 773 >/dev/null 2>&1 &');
      await channel.killEverything();
      await until(
        "the agent's sleeps are gone",
        async () => (await inspect("pgrep -c -f '^sleep 77[12]' || true")).trim() === '0',
        { timeoutMs: 5_000 },
      );
      expect((await inspect("pgrep -c -f '^sleep 773' || true")).trim()).toBe('1');
      await channel.ping();
    } finally {
      channel.close();
      await inspect("pkill -f '^sleep 773' || true");
    }
  });

  it('ends with the runtime: closing it leaves no channel in the sandbox', async () => {
    runtime.close();
    await until('no channel is left', async () => (await channels()).length === 0, {
      timeoutMs: 10_000,
    });
  });
});
