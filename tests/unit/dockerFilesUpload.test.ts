import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import type Docker from 'dockerode';
import { DockerFiles, SMALL_FILE_BYTES } from '../../lib/adapters/docker/files/dockerFiles.js';
import { DOCKER, UnavailableError } from '../../lib/errors.js';
import type { ExecRequest } from '../../lib/ports.js';

const ENTRY = [
  'f',
  String(SMALL_FILE_BYTES + 1),
  '640',
  '1764761234.123456789',
  '',
  '/home/agent/big.bin',
];

/**
 * The adapter with an engine and a sandbox that answer (a script's commit with ENTRY), a file that
 * takes its writes or fails them, and a channel's rename that puts the file in place or leaves it
 * to the script.
 */
function filesWith({
  failingUpload = false,
  placed = undefined as string[] | undefined,
  channelEnds = false,
  renameBug = false,
} = {}) {
  const commands: string[] = [];
  const moved: string[][] = [];
  // Only the staging folder's putArchive reaches the engine here.
  const docker = {
    getContainer: () => ({ putArchive: async () => Readable.from([]) }),
  } as unknown as Docker;
  const files = new DockerFiles(docker, {
    exec: async (_containerId: string, request: ExecRequest) => {
      commands.push(request.command);
      const commit = request.command.includes("matrx_files 'commit'");
      return {
        exitCode: 0,
        stdout: commit ? ['ok', ...ENTRY].join('\0') : '1000\n1000\n',
        stderr: '',
        timedOut: false,
        stdoutTruncated: false,
        stderrTruncated: false,
        cwd: '/home/agent',
      };
    },
    logged: (_operation, _containerId, run) => run(),
    openUpload: async () =>
      new Writable({
        write: (_chunk, _encoding, done) => {
          const full = Object.assign(new Error('ENOSPC: no space left on device, write'), {
            code: 'ENOSPC',
          });
          done(failingUpload ? full : undefined);
        },
      }),
    openForReading: async () => undefined,
    moveIntoPlace: async (_containerId, _user, staged, target) => {
      moved.push([staged, target]);
      if (channelEnds) throw new UnavailableError(DOCKER, 'the channel ended');
      if (renameBug) throw new TypeError('a bug of ours');
      return placed;
    },
  });
  return { files, commands, moved };
}

const largeWrite = (files: DockerFiles) => {
  const length = SMALL_FILE_BYTES + 1;
  return files.write(
    'container',
    'agent',
    '/home/agent/big.bin',
    { stream: Readable.from([Buffer.alloc(length)]), length },
    0o640,
  );
};

describe('a large write straight into the sandbox file', () => {
  it("answers the file's own failure (a full disk) as the sandbox's 503, and removes what it left", async () => {
    const { files, commands, moved } = filesWith({ failingUpload: true });
    const written = largeWrite(files);
    await expect(written).rejects.toBeInstanceOf(UnavailableError);
    await expect(written).rejects.toThrow(/could not write .*no space left on device/);
    expect(commands.some((command) => command.includes('remove'))).toBe(true);
    expect(moved).toEqual([]);
  });

  it("is put in place by the channel's rename, with no command, where the channel can", async () => {
    const { files, commands, moved } = filesWith({ placed: ENTRY });
    expect(await largeWrite(files)).toMatchObject({ path: '/home/agent/big.bin', mode: '0640' });
    expect(moved).toEqual([
      [expect.stringMatching(/^\/run\/matrx\/f\/1000\//), '/home/agent/big.bin'],
    ]);
    expect(commands.filter((command) => command.includes('matrx_files'))).toEqual([]);
  });

  it.each([
    ['leaves it to the script', {}],
    ['ended meanwhile', { channelEnds: true }],
  ])('is committed by the script where the channel %s', async (_case, options) => {
    const { files, commands, moved } = filesWith(options);
    expect(await largeWrite(files)).toMatchObject({ path: '/home/agent/big.bin', mode: '0640' });
    expect(moved).toHaveLength(1);
    const commit = commands.filter((command) => command.includes("matrx_files 'commit'"));
    expect(commit).toHaveLength(1);
    expect(commit[0]).toContain(`'${moved[0]?.[0]}' '/home/agent/big.bin' '640'`);
  });

  it('lets a failure of its own through rather than hide it behind the script', async () => {
    const { files, commands } = filesWith({ renameBug: true });
    await expect(largeWrite(files)).rejects.toThrow(TypeError);
    expect(commands.filter((command) => command.includes("matrx_files 'commit'"))).toEqual([]);
  });
});
