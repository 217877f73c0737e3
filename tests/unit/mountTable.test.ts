import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  escapeMountPath,
  mountAt,
  parseMountInfo,
  type MountEntry,
} from '../../lib/adapters/fuse/mountTable.js';

/** Paths rich in what mountinfo escapes: spaces, tabs, newlines, backslashes. */
const path = fc
  .array(
    fc.stringOf(fc.constantFrom('a', 'b', ' ', '\t', '\n', '\\', '-', 'é', '0'), {
      minLength: 1,
      maxLength: 6,
    }),
    {
      maxLength: 4,
    },
  )
  .map((segments) => `/${segments.join('/')}`);

const entry = fc.record({
  mountId: fc.nat(100_000).map(String),
  device: fc.tuple(fc.nat(300), fc.nat(300)).map(([major, minor]) => `${major}:${minor}`),
  root: path,
  mountPoint: path,
  fsType: fc.constantFrom('ext4', 'fuse.rclone', 'overlay', 'tmpfs'),
  source: fc.constantFrom('/dev/vda', 'matrx-cold', 'overlay', 'none'),
  shared: fc.boolean(),
});

/** A line as the kernel writes it (proc(5)). */
function line(mount: MountEntry, id: number): string {
  const optional = mount.shared ? [`shared:${id}`, `master:${id + 1}`] : [];
  return [
    mount.mountId,
    1,
    mount.device,
    escapeMountPath(mount.root),
    escapeMountPath(mount.mountPoint),
    'rw,relatime',
    ...optional,
    '-',
    mount.fsType,
    escapeMountPath(mount.source),
    'rw',
  ].join(' ');
}

describe('parseMountInfo', () => {
  it('reads back every line the kernel could write, escapes and optional fields included', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 8 }), (mounts) => {
        const text = mounts.map((mount, index) => line(mount, index + 10)).join('\n');
        expect(parseMountInfo(`${text}\n`)).toEqual(mounts);
      }),
    );
  });

  it('skips what does not have the shape of a line, whatever it is', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        for (const parsed of parseMountInfo(text)) {
          expect(parsed.device).toMatch(/^\d+:\d+$/);
        }
      }),
    );
    expect(parseMountInfo('no dash here\n1 2 3:4 / /x rw - \n')).toEqual([]);
  });

  it('reads a real line: a bind of the cold mount, with a peer group', () => {
    const [parsed] = parseMountInfo(
      '184 166 0:63 /alice/cold /var/lib/matrx/cold/slots/sbx-1 rw,nosuid master:7 - fuse.rclone matrx-cold rw,user_id=0\n',
    );
    expect(parsed).toEqual({
      mountId: '184',
      device: '0:63',
      root: '/alice/cold',
      mountPoint: '/var/lib/matrx/cold/slots/sbx-1',
      fsType: 'fuse.rclone',
      source: 'matrx-cold',
      shared: false,
    });
  });

  it('takes the last mount at a path: it hides those before it', () => {
    const mounts = parseMountInfo(
      '1 0 8:1 / /x rw shared:1 - ext4 /dev/a rw\n2 1 0:9 / /x rw - fuse.rclone matrx-cold rw\n',
    );
    expect(mountAt(mounts, '/x')?.fsType).toBe('fuse.rclone');
    expect(mountAt(mounts, '/y')).toBeUndefined();
  });
});
