import { describe, expect, it } from '@jest/globals';
import { ConflictError, PayloadTooLargeError, ValidationError } from '../../lib/errors.js';
import { loadConfig } from '../../lib/config.js';
import { withReadySandbox } from './fakes.js';

async function withFile(bytes: Buffer, mode = 0o640) {
  const parts = await withReadySandbox();
  const containerId = parts.sandbox.containerId as string;
  await parts.fakeFiles.write(containerId, 'agent', '/home/agent/f', bytes, mode);
  parts.fakeFiles.calls.length = 0;
  const read = () => parts.fakeFiles.read(containerId, 'agent', '/home/agent/f');
  return { ...parts, read };
}

describe('an edit', () => {
  const edit = (oldString: string, newString: string, replaceAll = false) => ({
    path: '/home/agent/f',
    oldString,
    newString,
    replaceAll,
  });

  it('replaces one exact occurrence, on bytes, and keeps the mode', async () => {
    const { files, sandbox, read, fakeFiles } = await withFile(
      Buffer.concat([Buffer.from('one two'), Buffer.from([0xff, 0x00])]),
    );
    const result = await files.edit(sandbox.sandboxId, 'agent', edit('two', 'deux'));
    expect(result).toEqual({ path: '/home/agent/f', replacements: 1 });
    expect(await read()).toEqual(Buffer.concat([Buffer.from('one deux'), Buffer.from([0xff, 0])]));
    expect(fakeFiles.calls).toContain('write /home/agent/f 640');
  });

  it('absent or ambiguous is a 409 that says which, and writes nothing', async () => {
    const { files, sandbox, fakeFiles } = await withFile(Buffer.from('a a a'));
    await expect(files.edit(sandbox.sandboxId, 'agent', edit('b', 'c'))).rejects.toThrow(
      new ConflictError('old_string was not found in /home/agent/f'),
    );
    await expect(files.edit(sandbox.sandboxId, 'agent', edit('a', 'c'))).rejects.toThrow(
      'old_string was found 3 times in /home/agent/f: make it unique, or set replace_all',
    );
    expect(fakeFiles.calls.filter((call) => call.startsWith('write'))).toEqual([]);
  });

  it('replaces every occurrence with replace_all, overlapping ones counted once', async () => {
    const { files, sandbox, read } = await withFile(Buffer.from('aaa'));
    expect(await files.edit(sandbox.sandboxId, 'agent', edit('aa', 'b', true))).toEqual({
      path: '/home/agent/f',
      replacements: 1,
    });
    expect((await read()).toString()).toBe('ba');
  });
});

describe('sizes', () => {
  it('a write or an archive over MATRX_MAX_FILE_BYTES is a 413 before the sandbox is reached', async () => {
    const { files, sandbox, fakeFiles } = await withReadySandbox();
    // serviceWith() runs on the default settings.
    const tooBig = Buffer.alloc(loadConfig({}).MAX_FILE_BYTES + 1);
    await expect(
      files.write(sandbox.sandboxId, 'agent', '/home/agent/x', tooBig, 0o644),
    ).rejects.toThrow(PayloadTooLargeError);
    await expect(
      files.writeArchive(sandbox.sandboxId, 'agent', '/home/agent', tooBig),
    ).rejects.toThrow(PayloadTooLargeError);
    expect(fakeFiles.calls).toEqual([]);
  });

  it('an archive that is not a tar is a 422', async () => {
    const { files, sandbox } = await withReadySandbox();
    await expect(
      files.writeArchive(sandbox.sandboxId, 'agent', '/home/agent', Buffer.alloc(1024, 'x')),
    ).rejects.toThrow(ValidationError);
  });
});
