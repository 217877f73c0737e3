import { parseArgs } from 'node:util';
import type { Sandboxes } from '../sandboxes.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in --help; the value's name after the option for a string option. */
  description: string;
  valueName?: string;
}

/** What a command got: its options, its words, and the words after `--`. */
export interface CommandInput {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  /** The words after `--`, as they were given. */
  rest: string[];
}

/** Where a command writes and reads, and the client it calls the API with. */
export interface CliContext {
  client: Sandboxes;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  json: boolean;
}

export interface Command {
  name: string;
  /** After `matrx `: `exec <sandbox_id> [options] -- <command...>`. */
  usage: string;
  summary: string;
  /** More lines for --help. */
  details?: string[];
  options: Record<string, OptionSpec>;
  /** The exit code. */
  run(input: CommandInput, context: CliContext): Promise<number>;
}

/** A mistake in how the command was called: exit code 2 and a pointer to --help. */
export class UsageError extends Error {}

export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'Print JSON (errors too, on stderr)' },
  help: { type: 'boolean', short: 'h', description: 'Show this help' },
};

/** Parses a command's arguments with node:util's parseArgs; a mistake is a UsageError. */
export function parseCommand(command: Command, args: string[]): CommandInput {
  const options = { ...command.options, ...COMMON_OPTIONS };
  const config = Object.fromEntries(
    Object.entries(options).map(([name, { type, short, multiple }]) => [
      name,
      { type, ...(short ? { short } : {}), ...(multiple ? { multiple } : {}) },
    ]),
  );
  try {
    const { values, positionals, tokens } = parseArgs({
      args,
      options: config,
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
    const terminator = tokens.find((token) => token.kind === 'option-terminator');
    const rest = terminator ? args.slice(terminator.index + 1) : [];
    return { values, positionals: positionals.slice(0, positionals.length - rest.length), rest };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function helpText(command: Command): string {
  const options = { ...command.options, ...COMMON_OPTIONS };
  const rows = Object.entries(options).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const value = spec.type === 'string' ? ` <${spec.valueName ?? 'value'}>` : '';
    const repeat = spec.multiple ? ' (repeatable)' : '';
    return [`  ${short}--${name}${value}`, `${spec.description}${repeat}`] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return [
    `Usage: matrx ${command.usage}`,
    '',
    command.summary,
    ...(command.details ? ['', ...command.details] : []),
    '',
    'Options:',
    ...rows.map(([left, right]) => `${left.padEnd(width)}${right}`),
    '',
  ].join('\n');
}

export function stringOption(input: CommandInput, name: string): string | undefined {
  const value = input.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function listOption(input: CommandInput, name: string): string[] {
  const value = input.values[name];
  return Array.isArray(value) ? value.filter((item) => typeof item === 'string') : [];
}

/** A whole number option, or undefined when not given; anything else is a UsageError. */
export function numberOption(input: CommandInput, name: string): number | undefined {
  const text = stringOption(input, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new UsageError(`--${name} must be a number, not ${JSON.stringify(text)}`);
  }
  return value;
}

/** `NAME=value` pairs into an object. */
export function envOption(input: CommandInput, name = 'env'): Record<string, string> | undefined {
  const pairs = listOption(input, name);
  if (pairs.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--${name} takes NAME=value, not ${JSON.stringify(pair)}`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

/** The one sandbox id a command takes first. */
export function sandboxIdArgument(input: CommandInput): string {
  const [id] = input.positionals;
  if (!id) throw new UsageError('needs a sandbox id');
  return id;
}

export function printJson(context: CliContext, value: unknown): void {
  context.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Reads all of a stream as text. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}
