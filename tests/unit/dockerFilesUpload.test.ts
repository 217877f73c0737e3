import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import type Docker from 'dockerode';
import { DockerFiles, SMALL_FILE_BYTES } from '../../lib/adapters/docker/files/dockerFiles.js';
import { UnavailableError } from '../../lib/errors.js';
import type { ExecRequest } from '../../lib/ports.js';

/** The adapter with an engine and a sandbox that answer, and a file that fails its writes. */
function filesWithFailingUpload() {
  const commands: string[] = [];
  // Only the staging folder's putArchive reaches the engine here.
  const docker = {
    getContainer: () => ({ putArchive: async () => Readable.from([]) }),
  } as unknown as Docker;
  const files = new DockerFiles(docker, {
    exec: async (_containerId: string, request: ExecRequest) => {
      commands.push(request.command);
      return {
        exitCode: 0,
        stdout: '1000\n1000\n',
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
          done(full);
        },
      }),
    openForReading: async () => undefined,
  });
  return { files, commands };
}

describe('a large write straight into the sandbox file', () => {
  it("answers the file's own failure (a full disk) as the sandbox's 503, and removes what it left", async () => {
    const { files, commands } = filesWithFailingUpload();
    const length = SMALL_FILE_BYTES + 1;
    const written = files.write(
      'container',
      'agent',
      '/home/agent/big.bin',
      { stream: Readable.from([Buffer.alloc(length)]), length },
      0o644,
    );
    await expect(written).rejects.toBeInstanceOf(UnavailableError);
    await expect(written).rejects.toThrow(/could not write .*no space left on device/);
    expect(commands.some((command) => command.includes('remove'))).toBe(true);
  });
});
