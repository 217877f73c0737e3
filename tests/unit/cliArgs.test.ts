import { execFileSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { envOption, parseCommand, UsageError, type Command } from '../../client/cli/command.js';
import { commandLine, exec } from '../../client/cli/execCommands.js';

describe('the CLI’s arguments', () => {
  it('pass several command words to bash as they were given', () => {
    // One bash for every sample (a bash per sample is slow), each one's words ended by \x01.
    const word = fc
      .string({ unit: 'binary', maxLength: 12 })
      .filter((w) => !w.includes('\0') && !w.includes('\x01'));
    const samples = fc.sample(fc.array(word, { maxLength: 4 }), 100);
    const script = samples
      .map((words) => `${commandLine(['printf', '%s\\0', ...words])}; printf '\\1'`)
      .join('\n');
    const out = execFileSync('bash', ['-c', script], { encoding: 'utf8' }).split('\x01');
    samples.forEach((words, index) => {
      const seen = (out[index] ?? '').split('\0').slice(0, -1);
      expect(seen).toEqual(words.length === 0 ? [''] : words);
    });
  });

  it('take one word as a shell line', () => {
    expect(commandLine(['ls | wc -l'])).toBe('ls | wc -l');
  });

  it('split the words after -- from the options, and refuse unknown options', () => {
    const input = parseCommand(exec, ['sbx-1', '--cwd', '/tmp', '--json', '--', 'ls', '--json']);
    expect(input.positionals).toEqual(['sbx-1']);
    expect(input.rest).toEqual(['ls', '--json']);
    expect(input.values).toMatchObject({ cwd: '/tmp', json: true });
    expect(() => parseCommand(exec, ['sbx-1', '--nope'])).toThrow(UsageError);
  });

  it('read NAME=value pairs, the value free to hold =', () => {
    const command = { options: { env: { type: 'string', multiple: true } } } as unknown as Command;
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/),
        fc.string({ maxLength: 10 }),
        (name, value) => {
          const input = parseCommand(command, [`--env=${name}=${value}`]);
          expect(envOption(input)).toEqual({ [name]: value });
        },
      ),
    );
    expect(() => envOption(parseCommand(command, ['--env', 'novalue']))).toThrow(UsageError);
    expect(() => envOption(parseCommand(command, ['--env', '=x']))).toThrow(UsageError);
  });
});
