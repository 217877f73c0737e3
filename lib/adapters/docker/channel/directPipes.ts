import { closeSync, constants, fstatSync, openSync, statSync } from 'node:fs';
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
