import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { openDirectPipes, parseOffer } from '../../lib/adapters/docker/channel/directPipes.js';

const dir = mkdtempSync(join(tmpdir(), 'matrx-pipes-'));
const held: number[] = [];

/** A FIFO this process holds open (read and write, so opening it never waits), as `fd:inode`. */
function heldFifo(name: string): string {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  held.push(fd);
  return `${fd}:${statSync(path, { bigint: true }).ino}`;
}

afterAll(() => {
  for (const fd of held) closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

describe("the compiled channel's offer of its own pipes", () => {
  it('reads three fd:inode pairs and nothing else, whatever it is sent', () => {
    expect(parseOffer('5:101 6:102 7:103')).toEqual([
      { fd: 5, inode: 101n },
      { fd: 6, inode: 102n },
      { fd: 7, inode: 103n },
    ]);
    for (const offer of ['', '5:1 6:2', '5:1 6:2 7:3 8:4', '5:1 6:x 7:3', '-5:1 6:2 7:3'])
      expect(parseOffer(offer)).toBeUndefined();
    fc.assert(
      fc.property(fc.string(), (offer) => {
        const parsed = parseOffer(offer);
        expect(parsed === undefined || parsed.length === 3).toBe(true);
      }),
    );
  });

  it('opens the pipes when each is the one offered', () => {
    const offer = [heldFifo('requests'), heldFifo('answers'), heldFifo('events')].join(' ');
    const pipes = openDirectPipes(process.pid, offer);
    expect(pipes).toBeDefined();
    for (const pipe of Object.values(pipes ?? {})) pipe.destroy();
  });

  it('opens nothing that is not the offered pipe: another inode, a plain file, no such process', () => {
    const [requests, answers] = [heldFifo('a'), heldFifo('b')];
    const [fd] = answers.split(':');
    expect(openDirectPipes(process.pid, `${requests} ${answers} ${fd}:1`)).toBeUndefined();
    const file = join(dir, 'file');
    writeFileSync(file, '');
    const fileFd = openSync(file, 'r');
    held.push(fileFd);
    const fileOffer = `${fileFd}:${statSync(file, { bigint: true }).ino}`;
    expect(openDirectPipes(process.pid, `${requests} ${answers} ${fileOffer}`)).toBeUndefined();
    expect(openDirectPipes(2 ** 22 + 7, `${requests} ${answers} ${answers}`)).toBeUndefined();
    expect(openDirectPipes(process.pid, 'not an offer')).toBeUndefined();
  });
});
