import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { MountRunner } from '../../lib/adapters/fuse/mountRunner.js';

const dir = mkdtempSync(join(tmpdir(), 'mount-runner-'));
const runner = new MountRunner();

afterAll(() => {
  runner.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('MountRunner', () => {
  it('runs nothing but mount and umount', async () => {
    await expect(runner.run(['touch', join(dir, 'x')])).rejects.toThrow('not a mount command');
    await expect(runner.run([])).rejects.toThrow('not a mount command');
  });

  it("answers each request in order, a failure with the command's own message", async () => {
    const missing = join(dir, 'no such dir');
    const answers = await Promise.allSettled([
      runner.run(['umount', missing]),
      runner.run(['umount', `${missing} 2`]),
      runner.run(['mount', '--version']),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    const messages = answers.map((answer) =>
      answer.status === 'rejected' ? String(answer.reason) : '',
    );
    expect(messages[0]).toContain(missing);
    expect(messages[1]).toContain(`${missing} 2`);
  });

  it('starts again after it was closed', async () => {
    runner.close();
    await expect(runner.run(['mount', '--version'])).resolves.toBeUndefined();
  });
});
