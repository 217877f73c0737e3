import { describe, expect, it } from '@jest/globals';
import { CappedOutput } from '../../lib/adapters/docker/cappedOutput.js';

function write(output: CappedOutput, chunk: string): Promise<void> {
  return new Promise((resolve) => output.write(Buffer.from(chunk), () => resolve()));
}

describe('CappedOutput', () => {
  it('keeps everything under the limit', async () => {
    const output = new CappedOutput(10);
    await write(output, 'hello');
    expect(output.text()).toBe('hello');
    expect(output.truncated).toBe(false);
  });

  it('keeps exactly the first limit bytes across chunks and flags the rest', async () => {
    const output = new CappedOutput(8);
    await write(output, 'abcde');
    await write(output, 'fghij');
    await write(output, 'klm');
    expect(output.text()).toBe('abcdefgh');
    expect(output.truncated).toBe(true);
  });
});
