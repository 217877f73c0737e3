import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  linkSync,
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
import {
  mayRead,
  mayWrite,
  openDirectFile,
  openDirectPipes,
  parseOffer,
} from '../../lib/adapters/docker/channel/directPipes.js';

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

describe('a file the channel opened, opened by this side through /proc', () => {
  /** A file this process holds open, as the channel would offer it. */
  function heldFile(name: string, flags: string) {
    const path = join(dir, name);
    writeFileSync(path, 'bytes');
    const fd = openSync(path, flags);
    held.push(fd);
    return { path, offered: { fd, inode: statSync(path, { bigint: true }).ino } };
  }

  it('opens the offered regular file for reading or writing, and nothing else', () => {
    const { offered } = heldFile('offered', 'r+');
    for (const purpose of ['read', 'write'] as const) {
      const fd = openDirectFile(process.pid, offered, purpose);
      expect(fd).toEqual(expect.any(Number));
      closeSync(fd as number);
      expect(openDirectFile(process.pid, { ...offered, inode: 1n }, purpose)).toBeUndefined();
      expect(openDirectFile(2 ** 22 + 7, offered, purpose)).toBeUndefined();
    }
    const [fifoFd = '', fifoInode = ''] = heldFifo('not-a-file').split(':');
    const fifo = { fd: Number(fifoFd), inode: BigInt(fifoInode) };
    expect(openDirectFile(process.pid, fifo, 'read')).toBeUndefined();
    // A second name: not a file the channel just made.
    const { path, offered: linked } = heldFile('linked', 'r+');
    linkSync(path, join(dir, 'second-name'));
    expect(openDirectFile(process.pid, linked, 'write')).toBeUndefined();
  });

  it("allows what the user's ids allow: owner, then group, then others; root anything", () => {
    const stat = (uid: number, gid: number, mode: number, nlink = 1) => ({
      uid: BigInt(uid),
      gid: BigInt(gid),
      mode: BigInt(0o100000 | mode),
      nlink: BigInt(nlink),
    });
    const user = { uid: 1000n, groups: [1000n, 27n] };
    expect(mayRead(stat(1000, 1000, 0o400), user)).toBe(true);
    // The owner's bits alone count for the owner, as in the kernel.
    expect(mayRead(stat(1000, 1000, 0o044), user)).toBe(false);
    expect(mayRead(stat(0, 27, 0o640), user)).toBe(true);
    expect(mayRead(stat(0, 27, 0o604), user)).toBe(false);
    expect(mayRead(stat(0, 0, 0o604), user)).toBe(true);
    expect(mayRead(stat(0, 0, 0o600), user)).toBe(false);
    expect(mayRead(stat(0, 0, 0o000), { uid: 0n, groups: [0n] })).toBe(true);
    expect(mayWrite(stat(1000, 1000, 0o000), user)).toBe(true);
    expect(mayWrite(stat(1000, 1000, 0o600, 2), user)).toBe(false);
    expect(mayWrite(stat(0, 1000, 0o666), user)).toBe(false);
    expect(mayWrite(stat(1000, 1000, 0o600), { uid: 0n, groups: [0n] })).toBe(true);
  });
});
