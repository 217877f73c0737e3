import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

/**
 * Reads NUL-separated requests (a count, then that many arguments), runs `mount` or `umount` with
 * them and answers the exit code and the first line of stderr, NUL-separated. Builtins only
 * besides the command itself: one fork and exec per request (a command substitution of one
 * command execs it in its fork), from a small process.
 */
const SCRIPT = `
while IFS= read -r -d '' count; do
  args=()
  for ((i = 0; i < count; i++)); do IFS= read -r -d '' arg; args+=("$arg"); done
  case \${args[0]-} in
    mount | umount) err=$("\${args[@]}" 2>&1 </dev/null >/dev/null); rc=$? ;;
    *) err='not a mount command'; rc=2 ;;
  esac
  printf '%s\\0%s\\0' "$rc" "\${err%%$'\\n'*}"
done
`;

type Answer = (fields: [string, string] | Error) => void;

/** One bash and what it owes: the answers still to come, in order, and the bytes read so far. */
interface Runner {
  process: ChildProcessWithoutNullStreams;
  waiting: Answer[];
  read: Buffer;
}

/**
 * `mount` and `umount` run by one long-lived bash rather than spawned by Node each time: a spawn
 * forks the whole service (hundreds of MiB), which under load took 30 to 250 ms per mount on a
 * 2-core host, on a claim's path. Requests run one at a time, in order.
 */
export class MountRunner {
  #runner: Runner | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /** Runs `mount` or `umount` with these arguments; rejects with its message when it fails. */
  run(args: string[]): Promise<void> {
    const request = async () => {
      const [rc, message] = await this.#ask(args);
      if (rc !== '0') throw new Error(`${args.join(' ')}: ${message || `exit code ${rc}`}`);
    };
    const done = this.#queue.then(request, request);
    this.#queue = done.catch(() => undefined);
    return done;
  }

  close(): void {
    this.#runner?.process.stdin.end();
    this.#runner = undefined;
  }

  #ask(args: string[]): Promise<[string, string]> {
    const runner = this.#started();
    return new Promise((resolve, reject) => {
      runner.waiting.push((answer) => (answer instanceof Error ? reject(answer) : resolve(answer)));
      runner.process.stdin.write(
        [String(args.length), ...args].map((field) => `${field}\0`).join(''),
      );
    });
  }

  #started(): Runner {
    if (this.#runner) return this.#runner;
    const child = spawn('bash', ['-c', SCRIPT, 'matrx-mount'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const runner: Runner = { process: child, waiting: [], read: Buffer.alloc(0) };
    const gone = (reason: string) => {
      if (this.#runner === runner) this.#runner = undefined;
      for (const answer of runner.waiting.splice(0)) answer(new Error(`mount runner ${reason}`));
    };
    child.once('exit', (code, signal) => gone(`exited (${code ?? signal})`));
    child.once('error', (error) => gone(`failed: ${error.message}`));
    child.stdin.on('error', () => undefined); // its exit says why
    child.stderr.resume();
    child.stdout.on('data', (chunk: Buffer) => readAnswers(runner, chunk));
    // It never keeps the service's process alive.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) {
      (stream as unknown as { unref?: () => void }).unref?.();
    }
    this.#runner = runner;
    return runner;
  }
}

function readAnswers(runner: Runner, chunk: Buffer): void {
  runner.read = Buffer.concat([runner.read, chunk]);
  for (;;) {
    const first = runner.read.indexOf(0);
    const second = first < 0 ? -1 : runner.read.indexOf(0, first + 1);
    if (second < 0) return;
    const rc = runner.read.subarray(0, first).toString('utf8');
    const message = runner.read.subarray(first + 1, second).toString('utf8');
    runner.read = runner.read.subarray(second + 1);
    runner.waiting.shift()?.([rc, message]);
  }
}
