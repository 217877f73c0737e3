import { createHash } from 'node:crypto';

/** Commands carry secrets: above DEBUG a command is logged as its length and a short hash. */
export function commandFingerprint(command: string) {
  return {
    command_length: command.length,
    command_sha256: createHash('sha256').update(command).digest('hex').slice(0, 12),
  };
}
