import {
  envOption,
  numberOption,
  printJson,
  sandboxIdArgument,
  stringOption,
  UsageError,
  type Command,
} from './command.js';
import { remotePath } from './fileCommands.js';
import type { SandboxConfig, SandboxInfo } from '../types.js';

export const create: Command = {
  name: 'create',
  usage: 'create --user <user_id> [options]',
  summary: 'Create a sandbox and print its id once it is ready.',
  options: {
    user: {
      type: 'string',
      valueName: 'user_id',
      description: 'Whose sandbox it is (default: MATRX_USER_ID)',
    },
    template: { type: 'string', valueName: 'name', description: 'A template of the server' },
    cpu: { type: 'string', valueName: 'cores', description: 'CPU cores, e.g. 0.5' },
    memory: { type: 'string', valueName: 'size', description: 'Memory, e.g. 512m or 2g' },
    ttl: { type: 'string', valueName: 'seconds', description: 'How long it may live' },
    'idle-timeout': {
      type: 'string',
      valueName: 'seconds',
      description: 'End it after this long with no command or heartbeat (0: never)',
    },
    network: { type: 'string', valueName: 'none|internet', description: 'Its network' },
    env: {
      type: 'string',
      multiple: true,
      valueName: 'NAME=value',
      description: 'A variable of every command',
    },
  },
  async run(input, context) {
    const userId = stringOption(input, 'user') ?? process.env.MATRX_USER_ID;
    if (!userId) throw new UsageError('needs --user <user_id> (or MATRX_USER_ID)');
    const config: SandboxConfig = {
      template: stringOption(input, 'template'),
      cpu: numberOption(input, 'cpu'),
      memory: stringOption(input, 'memory'),
      ttl_seconds: numberOption(input, 'ttl'),
      idle_timeout_seconds: numberOption(input, 'idle-timeout'),
      network: stringOption(input, 'network') as SandboxConfig['network'],
      env: envOption(input),
    };
    const defined = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
    const sandbox = await context.client.create(userId, defined);
    if (context.json) printJson(context, sandbox.info);
    else context.stdout.write(`${sandbox.id}\n`);
    return 0;
  },
};

export const list: Command = {
  name: 'ls',
  usage: 'ls [--user <user_id>]',
  summary: 'List sandboxes, of one user with --user.',
  options: {
    user: { type: 'string', valueName: 'user_id', description: 'Only this user’s sandboxes' },
  },
  async run(input, context) {
    const answer = await context.client.list({ userId: stringOption(input, 'user') });
    if (context.json) {
      printJson(context, answer);
      return 0;
    }
    const rows = answer.sandboxes.map((s) => [s.sandbox_id, s.user_id, s.status, s.expires_at]);
    context.stdout.write(table([['SANDBOX', 'USER', 'STATUS', 'EXPIRES'], ...rows]));
    return 0;
  },
};

export const get: Command = {
  name: 'get',
  usage: 'get <sandbox_id>',
  summary: 'Show one sandbox.',
  options: {},
  async run(input, context) {
    const sandbox = await context.client.get(sandboxIdArgument(input));
    if (context.json) printJson(context, sandbox.info);
    else context.stdout.write(describe(sandbox.info as SandboxInfo));
    return 0;
  },
};

export const remove: Command = {
  name: 'rm',
  usage: 'rm [options] <sandbox_id | sandbox_id:path>...',
  summary: 'Delete sandboxes (stopped and removed once their home is saved), or files in one.',
  details: ['  matrx rm sbx-0123456789ab', '  matrx rm -r sbx-0123456789ab:/home/agent/build'],
  options: {
    force: {
      type: 'boolean',
      short: 'f',
      description: 'Sandboxes: do not wait for a graceful stop',
    },
    recursive: {
      type: 'boolean',
      short: 'r',
      description: 'Files: a directory and everything in it',
    },
  },
  async run(input, context) {
    if (input.positionals.length === 0) throw new UsageError('needs a sandbox id or a path');
    for (const target of input.positionals) {
      const file = remotePath(target);
      if (file) {
        const recursive = input.values.recursive === true;
        await context.client.connect(file.sandboxId).files.remove(file.path, { recursive });
      } else {
        await context.client.connect(target).delete({ graceful: input.values.force !== true });
      }
    }
    if (context.json) printJson(context, { deleted: input.positionals });
    else context.stdout.write(input.positionals.map((target) => `${target}\n`).join(''));
    return 0;
  },
};

function describe(info: SandboxInfo): string {
  const rows = Object.entries(info).map(([name, value]) => [
    name,
    typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value),
  ]);
  return table(rows);
}

/** Columns padded to their widest cell. */
function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) =>
    Math.max(...rows.map((row) => (row[column] ?? '').length)),
  );
  return rows
    .map((row) =>
      row
        .map((cell, column) =>
          column < row.length - 1 ? cell.padEnd(widths?.[column] ?? 0) : cell,
        )
        .join('  '),
    )
    .map((line) => `${line}\n`)
    .join('');
}
