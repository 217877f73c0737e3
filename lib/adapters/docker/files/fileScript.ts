import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOCKER, PathError, UnavailableError } from '../../../errors.js';
import { FILE_TYPES, type FileEntry, type FileType } from '../../../ports.js';
import { PROJECT_ROOT } from '../../../projectRoot.js';

/** The file operations' script (sandbox-image/files.sh), sent with each of them. */
const FILES_SCRIPT = readFileSync(join(PROJECT_ROOT, 'sandbox-image/files.sh'), 'utf8');

/** The command that runs one operation of the script with its arguments, each quoted. */
export function fileCommand(operation: string, ...args: (string | number)[]): string {
  return `${FILES_SCRIPT}\nmatrx_files ${[operation, ...args].map((arg) => shellQuoted(String(arg))).join(' ')}\n`;
}

export function shellQuoted(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The script's answer: its status, then its fields, each ended by a NUL. */
export interface ScriptAnswer {
  status: string;
  fields: string[];
}

export function parseAnswer(stdout: string): ScriptAnswer {
  const fields = stdout.split('\0');
  const status = fields.shift() ?? '';
  return { status, fields };
}

/** An answer other than ok, as the error it means for `path`. */
export function pathError(answer: ScriptAnswer, path: string): Error {
  switch (answer.status) {
    case 'missing':
      return new PathError(404, `No such file or directory: ${path}`);
    case 'denied':
      return new PathError(403, `Permission denied: ${path}`);
    case 'isdir':
      return new PathError(409, `Is a directory: ${path}`);
    case 'notdir':
      return new PathError(409, `Not a directory: ${path}`);
    case 'exists':
      return new PathError(409, `File exists: ${path}`);
    case 'notempty':
      return new PathError(409, `Directory not empty: ${path}`);
    case 'other':
      return new PathError(409, `${answer.fields[0] ?? 'Cannot do that'}: ${path}`);
    default:
      // The script did not answer (it was killed, or the sandbox could not start it).
      return new UnavailableError(
        DOCKER,
        `The sandbox did not finish the file operation (it answered ${JSON.stringify(answer.status.slice(0, 80))})`,
      );
  }
}

/** The fields of one entry, as files.sh's ENTRY_FORMAT prints them. */
export const ENTRY_FIELDS = 6;
const TYPE_LETTERS: Record<string, FileType> = { f: 'file', d: 'dir', l: 'symlink' };

/** Entries as the script prints them (find's ENTRY_FORMAT), from `fields` on. */
export function parseEntries(fields: string[]): FileEntry[] {
  const entries: FileEntry[] = [];
  for (let at = 0; at + ENTRY_FIELDS <= fields.length; at += ENTRY_FIELDS) {
    const [letter, size, mode, mtime, target, path] = fields.slice(at, at + ENTRY_FIELDS) as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const type = TYPE_LETTERS[letter] ?? 'other';
    const entry: FileEntry = {
      path,
      name: path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1),
      type: FILE_TYPES.includes(type) ? type : 'other',
      size: Number(size),
      mode: mode.padStart(4, '0'),
      modifiedAt: new Date(Math.round(Number(mtime) * 1000)),
    };
    if (type === 'symlink') entry.target = target;
    entries.push(entry);
  }
  return entries;
}
