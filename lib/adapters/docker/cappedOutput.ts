import { Writable } from 'node:stream';

/** Keeps the first `limit` bytes written to it and counts the rest, so output cannot grow memory. */
export class CappedOutput extends Writable {
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #truncated = false;

  constructor(private readonly limit: number) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    const room = this.limit - this.#kept;
    if (chunk.length > room) this.#truncated = true;
    if (room > 0) {
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.#chunks.push(kept);
      this.#kept += kept.length;
    }
    done();
  }

  get truncated(): boolean {
    return this.#truncated;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}
