import { ApiError, ConnectionError, MatrxError } from '../errors.js';
import { Sandboxes } from '../sandboxes.js';
import { helpText, parseCommand, UsageError, type CliContext, type Command } from './command.js';
import { exec, shell } from './execCommands.js';
import { copy, files } from './fileCommands.js';
import { create, get, list, remove } from './sandboxCommands.js';

const mcp: Command = {
  name: 'mcp',
  usage: 'mcp',
  summary: 'Serve the Model Context Protocol on stdio: tools for sandboxes, commands, files.',
  details: ['Add it to an MCP client as the command `npx matrx mcp` (README.md shows how).'],
  options: {},
  async run(_input, context) {
    const { serveMcp } = await import('../mcp/server.js');
    await serveMcp(context.client);
    return 0;
  },
};

const COMMANDS: Command[] = [create, list, get, exec, shell, copy, files, remove, mcp];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'Usage: matrx <command> [options]',
    '',
    'Drives a matrx sandbox server: MATRX_URL (default http://localhost:8000) and MATRX_API_KEY.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Every command takes --json and --help (matrx <command> --help).',
    '',
  ].join('\n');
}

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: CliContext['stdin'];
}

/** Runs `matrx <args>`; answers the exit code. */
export async function main(args: string[], io: Io): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = COMMANDS.find((c) => c.name === rest[0]);
    (name === undefined ? io.stderr : io.stdout).write(topic ? helpText(topic) : overview());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`matrx: no command ${JSON.stringify(name)}; see matrx --help\n`);
    return 2;
  }
  const optionsEnd = rest.includes('--') ? rest.indexOf('--') : rest.length;
  const json = rest.slice(0, optionsEnd).includes('--json');
  try {
    const input = parseCommand(command, rest);
    if (input.values.help === true) {
      io.stdout.write(helpText(command));
      return 0;
    }
    const client = new Sandboxes();
    return await command.run(input, { ...io, client, json: input.values.json === true });
  } catch (error) {
    return report(error, command, io, json);
  }
}

/** One line on stderr (JSON with --json); the exit code: 2 for a usage mistake, else 1. */
function report(error: unknown, command: Command, io: Io, json: boolean): number {
  if (error instanceof UsageError) {
    io.stderr.write(`matrx ${command.name}: ${error.message}; see matrx ${command.name} --help\n`);
    return 2;
  }
  if (error instanceof ApiError) {
    const line = json
      ? JSON.stringify({ status: error.status, detail: error.detail })
      : `matrx: ${error.status} ${error.detail} (${error.method} ${error.path})`;
    io.stderr.write(`${line}\n`);
    return 1;
  }
  if (!(error instanceof MatrxError)) throw error;
  const kind = error instanceof ConnectionError ? 'cannot reach the server' : 'failed';
  const line = json
    ? JSON.stringify({ status: null, detail: error.message })
    : `matrx: ${kind}: ${error.message}`;
  io.stderr.write(`${line}\n`);
  return 1;
}
