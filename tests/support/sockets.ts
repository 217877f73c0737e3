import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { processGroup } from './processes.js';

export interface Listener {
  address: string;
  port: number;
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match?.[1]) inodes.add(match[1]);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/**
 * /proc/net/tcp writes an address as 32-bit words in host (little-endian) order. IPv6 comes back
 * as its eight groups written out, but for the all-zero, loopback and IPv4-mapped forms.
 */
function decodeAddress(hex: string): string {
  const bytes = (hex.match(/.{8}/g) ?? []).flatMap((word) =>
    (word.match(/../g) ?? []).reverse().map((byte) => parseInt(byte, 16)),
  );
  if (bytes.length === 4) return bytes.join('.');
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((byte) => byte === 0);
  if (zeros(0, 16)) return '::';
  if (zeros(0, 15) && bytes[15] === 1) return '::1';
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join('.')}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  }
  return groups.join(':');
}

const LISTEN = '0A';

/**
 * The TCP sockets the processes of group `pgid` listen on, read from /proc (v4 and v6): what
 * `ss -ltnp` would show for them.
 */
export function listeningSockets(pgid: number): Listener[] {
  const inodes = new Set(processGroup(pgid).flatMap((pid) => [...socketInodes(pid)]));
  const listeners: Listener[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[] = [];
    try {
      lines = readFileSync(table, 'utf8').trim().split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      const fields = line.trim().split(/\s+/);
      const [local = '', state, inode = ''] = [fields[1], fields[3], fields[9]];
      if (state !== LISTEN || !inodes.has(inode)) continue;
      const [address = '', port = ''] = local.split(':');
      listeners.push({ address: decodeAddress(address), port: parseInt(port, 16) });
    }
  }
  return listeners;
}
