import { createInterface } from 'node:readline';
import {
  envOption,
  numberOption,
  printJson,
  readAll,
  sandboxIdArgument,
  stringOption,
  UsageError,
  type CliContext,
  type Command,
  type CommandInput,
} from './command.js';
import type { ProcessHandle } from '../processes.js';
import type { ExecOptions } from '../sandbox.js';

/** What ended with no exit code of its own (killed before it could give one) exits with. */
const NO_EXIT_CODE = 1;

const commandOptions = {
  cwd: { type: 'string', valueName: 'dir', description: 'Start in this directory (absolute)' },
  env: {
    type: 'string',
    multiple: true,
    valueName: 'NAME=value',
    description: 'A variable of this command',
  },
  user: { type: 'string', valueName: 'name', description: 'Run as this Linux user (agent)' },
  timeout: { type: 'string', valueName: 'seconds', description: 'Kill it after this long' },
} as const;

/**
 * The command line to run with bash -c: one word is a shell line as it is (`'ls | wc -l'`);
 * several are quoted one by one, so they arrive as given.
 */
export function commandLine(words: string[]): string {
  if (words.length === 1) return words[0] as string;
  return words.map(shellQuote).join(' ');
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function commandOf(input: CommandInput): string {
  const words = input.rest.length > 0 ? input.rest : input.positionals.slice(1);
  if (words.length === 0) throw new UsageError('needs a command after --');
  return commandLine(words);
}

function execOptions(input: CommandInput): ExecOptions {
  return {
    cwd: stringOption(input, 'cwd'),
    env: envOption(input),
    user: stringOption(input, 'user'),
    timeout: numberOption(input, 'timeout'),
  };
}

export const exec: Command = {
  name: 'exec',
  usage: 'exec <sandbox_id> [options] -- <command...>',
  summary: "Run a command in the sandbox and exit with its exit code; its output is the command's.",
  details: [
    'One word after -- is a shell line as it is (matrx exec ID -- "ls | wc -l"); several are',
    'passed as separate words. Without --cwd the command starts where the last one ended.',
    'With --background it starts a process and prints its id; --follow also streams its output',
    'until it ends and exits with its exit code.',
  ],
  options: {
    ...commandOptions,
    stdin: { type: 'boolean', description: "Send this program's stdin as the command's" },
    background: { type: 'boolean', short: 'b', description: 'Start it as a background process' },
    follow: {
      type: 'boolean',
      short: 'f',
      description: 'With --background: stream its output until it ends',
    },
  },
  async run(input, context) {
    const sandbox = context.client.connect(sandboxIdArgument(input));
    const command = commandOf(input);
    const stdin = input.values.stdin === true ? await readAll(context.stdin) : undefined;
    if (input.values.background === true || input.values.follow === true) {
      const { stdin: _unused, ...options } = execOptions(input);
      const process = await sandbox.processes.start(command, options);
      if (stdin !== undefined) await process.write(stdin, { eof: true });
      if (input.values.follow !== true) {
        if (context.json) printJson(context, process.info);
        else context.stdout.write(`${process.id}\n`);
        return 0;
      }
      return follow(process, context);
    }
    const result = await sandbox.exec(command, { ...execOptions(input), stdin });
    if (context.json) {
      printJson(context, result);
    } else {
      context.stdout.write(result.stdout);
      context.stderr.write(result.stderr);
      if (result.timed_out) context.stderr.write(`matrx: the command timed out\n`);
      if (result.stdout_truncated || result.stderr_truncated) {
        context.stderr.write('matrx: output was cut at the server’s limit\n');
      }
    }
    return result.exit_code;
  },
};

/** Streams a process's output until it ends; with --json one JSON line per read. */
async function follow(process: ProcessHandle, context: CliContext): Promise<number> {
  const reads = process.output();
  for (;;) {
    const next = await reads.next();
    if (next.done) {
      if (context.json) {
        const { status, exit_code } = next.value;
        context.stdout.write(`${JSON.stringify({ process_id: process.id, status, exit_code })}\n`);
      }
      return next.value.exit_code ?? NO_EXIT_CODE;
    }
    if (context.json) {
      context.stdout.write(`${JSON.stringify(next.value)}\n`);
    } else {
      context.stdout.write(next.value.stdout);
      context.stderr.write(next.value.stderr);
    }
  }
}

export const shell: Command = {
  name: 'shell',
  usage: 'shell <sandbox_id> [options]',
  summary: 'An interactive prompt: each line runs as a command, the directory kept between them.',
  details: [
    'exit or end of input (Ctrl-D) leaves; the exit code is the last command’s. Ctrl-C stops',
    'waiting for a command (it goes on in the sandbox until its timeout).',
  ],
  options: {
    user: commandOptions.user,
    timeout: commandOptions.timeout,
  },
  async run(input, context) {
    const sandbox = context.client.connect(sandboxIdArgument(input));
    const options = { user: stringOption(input, 'user'), timeout: numberOption(input, 'timeout') };
    const interactive = context.stdin.isTTY === true;
    let cwd = (await sandbox.exec('true', options)).cwd;
    let lastExit = 0;
    const lines = createInterface({ input: context.stdin, terminal: interactive });
    const prompt = () => {
      if (interactive) context.stdout.write(`${options.user ?? 'agent'}@${sandbox.id}:${cwd}$ `);
    };
    let running: AbortController | undefined;
    lines.on('SIGINT', () => {
      if (running) running.abort();
      else {
        context.stdout.write('^C\n');
        prompt();
      }
    });
    prompt();
    for await (const line of lines) {
      const text = line.trim();
      if (text === 'exit' || text === 'logout') break;
      if (text !== '') {
        running = new AbortController();
        try {
          const result = await sandbox.exec(line, { ...options, signal: running.signal });
          cwd = result.cwd;
          lastExit = result.exit_code;
          if (context.json) context.stdout.write(`${JSON.stringify(result)}\n`);
          else {
            context.stdout.write(result.stdout);
            context.stderr.write(result.stderr);
          }
        } catch (error) {
          if (!running.signal.aborted) throw error;
          context.stderr.write('matrx: stopped waiting; the command goes on in the sandbox\n');
          lastExit = 130;
        } finally {
          running = undefined;
        }
      }
      prompt();
    }
    lines.close();
    return lastExit;
  },
};
