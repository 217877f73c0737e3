import type { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';

/** Bytes too many to hold at once (a large file in or out): a stream of exactly `length` bytes. */
export interface ByteStream {
  readonly stream: Readable;
  readonly length: number;
}

/** A file's bytes as the API moves them: in memory, or streamed (lib/http/streamedBodies.ts). */
export type Bytes = Buffer | ByteStream;

/**
 * The bytes in memory: a stream read whole. Its length is known (and bounded by the caller); a
 * stream that ends short of it (a client gone mid-upload) is refused.
 */
export async function inMemory(bytes: Bytes): Promise<Buffer> {
  if (Buffer.isBuffer(bytes)) return bytes;
  const chunks: Buffer[] = [];
  for await (const chunk of bytes.stream) chunks.push(chunk as Buffer);
  const whole = Buffer.concat(chunks);
  if (whole.length !== bytes.length) throw shortBody(whole.length, bytes.length);
  return whole;
}

export function shortBody(got: number, expected: number): ValidationError {
  return new ValidationError([
    {
      loc: ['body'],
      msg: `the body ended after ${got} of its ${expected} bytes`,
      type: 'value_error',
    },
  ]);
}
