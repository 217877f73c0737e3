import { Writable } from 'node:stream';

/** Hands each chunk written to it to `onChunk`, at once. */
export function chunkSink(onChunk: (chunk: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      onChunk(chunk);
      done();
    },
  });
}
