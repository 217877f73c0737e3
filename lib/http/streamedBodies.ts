import { randomUUID } from 'node:crypto';
import type { ByteStream } from '../domain/bytes.js';

/**
 * Bodies passed by reference between the HTTP server and the handlers of the same process: a
 * large file would otherwise cross as a Lambda event's base64 string, which costs several times
 * the transfer itself and holds the file in memory three times over. The server lends a request's
 * body (lib/http/serverPayloads.ts) and the handler claims it; a handler lends a response's body
 * and the server claims it. The header naming one is the server's own: a caller's is dropped.
 */
export const STREAMED_BODY_HEADER = 'x-matrx-streamed-body';

const lent = new Map<string, ByteStream>();

export function lendBody(body: ByteStream): string {
  const id = randomUUID();
  lent.set(id, body);
  return id;
}

/** The body lent under `id`, once: a second claim gets nothing. */
export function claimBody(id: string): ByteStream | undefined {
  const body = lent.get(id);
  lent.delete(id);
  return body;
}
