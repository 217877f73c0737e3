import { closeSync, constants, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { Socket } from 'node:net';

/** The compiled channel's own pipes, opened from this side: requests in, answers and events out. */
export interface DirectPipes {
  requests: Socket;
  answers: Socket;
  events: Socket;
}

interface OfferedPipe {
  fd: number;
  inode: bigint;
}

/** The channel's offer, `fd:inode` for its requests, answers and events pipes; else undefined. */
export function parseOffer(offer: string): OfferedPipe[] | undefined {
  const pipes = offer.split(' ').map((part) => /^(\d{1,9}):(\d{1,20})$/.exec(part));
  if (pipes.length !== 3 || pipes.some((match) => !match)) return undefined;
  return pipes.map((match) => ({ fd: Number(match?.[1]), inode: BigInt(match?.[2] ?? 0) }));
}

/** The pipe behind `path` (a /proc fd link), if it is the one offered; a FIFO, never anything else. */
function isOffered(stat: { isFIFO(): boolean; ino: bigint }, pipe: OfferedPipe): boolean {
  return stat.isFIFO() && stat.ino === pipe.inode;
}

/**
 * Opens the pipes the channel process `pid` offers, through /proc, so that requests and answers
 * skip the engine's copying of the exec's stdio (two processes each way). Only a service in the
 * host's process namespace with the right to read the channel's descriptors can (root); anywhere
 * else this answers undefined, and the exec's stdio serves as before.
 *
 * Each descriptor is checked before and after it is opened to be a pipe with the inode the
 * channel announced, so a process with that number in another namespace, or a descriptor swapped
 * in between, is never written to; opening never blocks (O_NONBLOCK).
 */
export function openDirectPipes(pid: number, offer: string): DirectPipes | undefined {
  const offered = parseOffer(offer);
  if (!offered || !Number.isInteger(pid) || pid <= 0) return undefined;
  const opened: number[] = [];
  try {
    const fds = offered.map((pipe, index) => {
      const path = `/proc/${pid}/fd/${pipe.fd}`;
      if (!isOffered(statSync(path, { bigint: true }), pipe)) throw new Error('not the offer');
      const direction = index === 0 ? constants.O_WRONLY : constants.O_RDONLY;
      const fd = openSync(path, direction | constants.O_NONBLOCK | constants.O_NOCTTY);
      opened.push(fd);
      if (!isOffered(fstatSync(fd, { bigint: true }), pipe)) throw new Error('not the offer');
      return fd;
    });
    const [requests, answers, events] = fds as [number, number, number];
    return {
      requests: new Socket({ fd: requests, readable: false, writable: true }),
      answers: new Socket({ fd: answers, readable: true, writable: false }),
      events: new Socket({ fd: events, readable: true, writable: false }),
    };
  } catch {
    for (const fd of opened) closeSync(fd);
    return undefined;
  }
}

/** A file the channel opened, as it announced it: its descriptor's number and the file's inode. */
export interface OfferedFile {
  fd: number;
  inode: bigint;
}

/**
 * This side's own descriptor for a regular file the channel `pid` opened (`fd`, for reading or
 * writing), through /proc as for its pipes; undefined where it cannot be opened, or is not the
 * file offered. The channel cannot be traced by its user (it is not dumpable), but the file is
 * still checked to be one its user may use so: one the user owns, and no other name has, to be
 * written (the channel made it), one the user's ids may read, to be read. Open as root, it is
 * never given more than that.
 */
export function openDirectFile(
  pid: number,
  file: OfferedFile,
  purpose: 'read' | 'write',
): number | undefined {
  let fd: number | undefined;
  try {
    const ids = fsIdsOf(pid);
    const direction = purpose === 'write' ? constants.O_WRONLY : constants.O_RDONLY;
    fd = openSync(
      `/proc/${pid}/fd/${file.fd}`,
      direction | constants.O_NONBLOCK | constants.O_NOCTTY,
    );
    const stat = fstatSync(fd, { bigint: true });
    const mayUse = purpose === 'write' ? mayWrite(stat, ids) : mayRead(stat, ids);
    if (!stat.isFile() || stat.ino !== file.inode || !mayUse) throw new Error('not the offer');
    return fd;
  } catch {
    if (fd !== undefined) closeSync(fd);
    return undefined;
  }
}

export interface FileIds {
  uid: bigint;
  /** Its file-access group and its supplementary groups. */
  groups: bigint[];
}

export interface FileStat {
  uid: bigint;
  gid: bigint;
  mode: bigint;
  nlink: bigint;
}

/** The ids a process's file accesses are checked against (the fourth of each line), and its groups. */
function fsIdsOf(pid: number): FileIds {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const id = (name: string) => {
    const fsId = new RegExp(`^${name}:\\s+\\d+\\s+\\d+\\s+\\d+\\s+(\\d+)`, 'm').exec(status)?.[1];
    if (fsId === undefined) throw new Error(`no ${name} in the status of ${pid}`);
    return BigInt(fsId);
  };
  const supplementary = /^Groups:([^\n]*)$/m.exec(status)?.[1]?.trim() ?? '';
  return {
    uid: id('Uid'),
    groups: [id('Gid'), ...supplementary.split(/\s+/).filter(Boolean).map(BigInt)],
  };
}

/** A file the user owns and no other name has: one the channel made for the user. */
export function mayWrite(stat: FileStat, ids: FileIds): boolean {
  return stat.nlink === 1n && (ids.uid === 0n || stat.uid === ids.uid);
}

/** What the kernel would say to a read by the user, but that groups are only those it lists. */
export function mayRead(stat: FileStat, ids: FileIds): boolean {
  if (ids.uid === 0n) return true;
  if (stat.uid === ids.uid) return (stat.mode & 0o400n) !== 0n;
  if (ids.groups.includes(stat.gid)) return (stat.mode & 0o040n) !== 0n;
  return (stat.mode & 0o004n) !== 0n;
}
