import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  numberOption,
  printJson,
  readAll,
  UsageError,
  type CliContext,
  type Command,
  type CommandInput,
} from './command.js';
import { NotFoundError } from '../errors.js';
import type { Progress } from '../files.js';

/** `sbx-0123456789ab:/home/agent/x` split in two; undefined for a local path. */
export function remotePath(arg: string): { sandboxId: string; path: string } | undefined {
  const match = /^([^:/]+):(\/.*)$/.exec(arg);
  return match ? { sandboxId: match[1] as string, path: match[2] as string } : undefined;
}

function mustBeRemote(arg: string | undefined): { sandboxId: string; path: string } {
  const remote = arg === undefined ? undefined : remotePath(arg);
  if (!remote) throw new UsageError('needs <sandbox_id>:<absolute path>');
  return remote;
}

const MIB = 1024 * 1024;

/** A one-line progress meter on stderr, rewritten in place; `done()` ends its line. */
function progressMeter(context: CliContext, input: CommandInput) {
  const shown =
    !context.json &&
    (input.values.progress === true || (context.stderr as { isTTY?: boolean }).isTTY === true);
  let drawn = false;
  const update: Progress = (done, total) => {
    const of = total ? ` / ${(total / MIB).toFixed(1)} MiB` : '';
    context.stderr.write(`\rmatrx: ${(done / MIB).toFixed(1)} MiB${of}`);
    drawn = true;
  };
  return {
    onProgress: shown ? update : undefined,
    done: () => {
      if (drawn) context.stderr.write('\n');
    },
  };
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() === true;
}

export const copy: Command = {
  name: 'cp',
  usage: 'cp <source> <destination>',
  summary: 'Copy a file or a directory (as tar) into a sandbox or out of it.',
  details: [
    'One side is <sandbox_id>:<absolute path>, the other a local path, or - for stdin or stdout.',
    '  matrx cp ./notes.md sbx-0123456789ab:/home/agent/notes.md',
    '  matrx cp sbx-0123456789ab:/home/agent/project ./project    (a directory: its tree)',
    'A local directory as destination gets the file under its own name. A progress meter shows',
    'on stderr when it is a terminal, or with --progress.',
  ],
  options: {
    progress: { type: 'boolean', description: 'Show the progress meter even when not a terminal' },
  },
  async run(input, context) {
    const [source, destination] = input.positionals;
    if (!source || !destination || input.positionals.length > 2) {
      throw new UsageError('needs a source and a destination');
    }
    const from = remotePath(source);
    const to = remotePath(destination);
    if (Boolean(from) === Boolean(to)) {
      throw new UsageError('one side must be <sandbox_id>:<path>, the other local');
    }
    const meter = progressMeter(context, input);
    try {
      const result = from
        ? await download(context, from, destination, meter.onProgress)
        : await upload(context, source, mustBeRemote(destination), meter.onProgress);
      meter.done();
      if (context.json) printJson(context, result);
      return 0;
    } catch (error) {
      meter.done();
      throw error;
    }
  },
};

async function upload(
  context: CliContext,
  local: string,
  remote: { sandboxId: string; path: string },
  onProgress: Progress | undefined,
) {
  const files = context.client.connect(remote.sandboxId).files;
  if (local !== '-' && (await isDirectory(local))) {
    return files.uploadDir(local, remote.path, { onProgress });
  }
  const bytes = local === '-' ? Buffer.from(await readAll(context.stdin)) : await readFile(local);
  let path = remote.path;
  const target = await files.stat(path).catch((error: unknown) => {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  });
  if (target?.type === 'dir' && local !== '-')
    path = `${path.replace(/\/+$/, '')}/${basename(local)}`;
  return files.write(path, bytes, { onProgress });
}

async function download(
  context: CliContext,
  remote: { sandboxId: string; path: string },
  local: string,
  onProgress: Progress | undefined,
) {
  const files = context.client.connect(remote.sandboxId).files;
  const entry = await files.stat(remote.path);
  if (entry.type === 'dir') {
    if (local === '-') throw new UsageError('a directory cannot go to stdout');
    await files.downloadDir(remote.path, local, { onProgress });
    return { path: local, from: entry.path, type: 'dir' };
  }
  const bytes = await files.read(remote.path, { onProgress });
  if (local === '-') {
    context.stdout.write(bytes);
    return { path: '-', from: entry.path, bytes: bytes.length };
  }
  const path = (await isDirectory(local)) ? join(local, entry.name) : local;
  await writeFile(path, bytes);
  return { path, from: entry.path, bytes: bytes.length };
}

export const files: Command = {
  name: 'files',
  usage: 'files ls <sandbox_id>:<path> [--depth <n>]',
  summary: "List a sandbox's directory.",
  options: {
    depth: { type: 'string', valueName: 'n', description: 'Levels down, 1 (default) to 10' },
  },
  async run(input, context) {
    const [action, target] = input.positionals;
    if (action !== 'ls') throw new UsageError('the one action is ls');
    const remote = mustBeRemote(target);
    const listed = await context.client
      .connect(remote.sandboxId)
      .files.list(remote.path, { depth: numberOption(input, 'depth') });
    if (context.json) {
      printJson(context, listed);
      return 0;
    }
    for (const entry of listed.entries) {
      const size = entry.type === 'dir' ? '-' : String(entry.size);
      const link = entry.target === undefined ? '' : ` -> ${entry.target}`;
      context.stdout.write(
        `${entry.type.padEnd(7)} ${entry.mode} ${size.padStart(10)} ${entry.modified_at}  ${entry.path}${link}\n`,
      );
    }
    return 0;
  },
};
