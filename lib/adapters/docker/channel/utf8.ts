import type { StreamChunk } from './channel.js';

/**
 * A chunk of a stream as text, and the offset to read on from. While more may come, a character
 * cut at the chunk's end is left for the next read, so an offset never splits one.
 */
export function decodeChunk(
  chunk: StreamChunk,
  moreMayCome: boolean,
): { text: string; offset: number } {
  const kept = moreMayCome
    ? chunk.bytes.length - cutCharacterBytes(chunk.bytes)
    : chunk.bytes.length;
  return {
    text: chunk.bytes.subarray(0, kept).toString('utf8'),
    offset: chunk.offset + kept,
  };
}

/** How many bytes at the end begin a UTF-8 character that is not complete. */
export function cutCharacterBytes(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back += 1) {
    const byte = bytes[bytes.length - back] as number;
    if ((byte & 0xc0) !== 0x80) {
      const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
      return length > back ? back : 0;
    }
  }
  return 0;
}
