/**
 * Reads a channel's answers as they arrive in chunks: NUL-ended text fields and runs of raw bytes.
 * One reader at a time (answers come in the order of the requests); a read waits for its bytes.
 */
export class ByteReader {
  readonly #chunks: Buffer[] = [];
  #buffered = 0;
  #wake: (() => void) | undefined;
  #ended: Error | undefined;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    this.#notify();
  }

  /** No more bytes will come: pending and later reads fail with `reason`. */
  end(reason: Error): void {
    this.#ended ??= reason;
    this.#notify();
  }

  /** What is buffered and not read yet, as UTF-8, left in place (to say why a stream ended). */
  unread(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }

  /** The bytes up to the next NUL, as UTF-8; the NUL is consumed. */
  async text(): Promise<string> {
    return (await this.field()).toString('utf8');
  }

  /** The bytes up to the next NUL; the NUL is consumed. */
  async field(): Promise<Buffer> {
    for (;;) {
      const at = this.#indexOfNul();
      if (at >= 0) {
        const field = this.#take(at);
        this.#take(1);
        return field;
      }
      await this.#more();
    }
  }

  async number(): Promise<number> {
    const field = await this.text();
    const value = Number(field);
    if (field === '' || !Number.isFinite(value)) {
      throw new Error(`channel answered ${JSON.stringify(field)} where a number belongs`);
    }
    return value;
  }

  async bytes(length: number): Promise<Buffer> {
    while (this.#buffered < length) await this.#more();
    return this.#take(length);
  }

  #indexOfNul(): number {
    let offset = 0;
    for (const chunk of this.#chunks) {
      const at = chunk.indexOf(0);
      if (at >= 0) return offset + at;
      offset += chunk.length;
    }
    return -1;
  }

  #take(length: number): Buffer {
    const parts: Buffer[] = [];
    let needed = length;
    while (needed > 0) {
      const head = this.#chunks[0] as Buffer;
      if (head.length <= needed) {
        parts.push(head);
        this.#chunks.shift();
        needed -= head.length;
      } else {
        parts.push(head.subarray(0, needed));
        this.#chunks[0] = head.subarray(needed);
        needed = 0;
      }
    }
    this.#buffered -= length;
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
  }

  #more(): Promise<void> {
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve) => (this.#wake = resolve));
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
