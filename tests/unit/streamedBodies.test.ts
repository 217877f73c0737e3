import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { inMemory } from '../../lib/domain/bytes.js';
import { ValidationError } from '../../lib/errors.js';
import { bytesResponse, requestBytes } from '../../lib/http/responses.js';
import { STREAMED_BODY_HEADER, claimBody, lendBody } from '../../lib/http/streamedBodies.js';

const streamOf = (...chunks: Buffer[]) => Readable.from(chunks, { objectMode: false });

describe('bodies lent between the HTTP server and the handlers', () => {
  it("a lent request body is the handler's once; an unknown or spent id falls back to the event", async () => {
    const body = { stream: streamOf(Buffer.from('streamed')), length: 8 };
    const id = lendBody(body);
    const event = {
      headers: { [STREAMED_BODY_HEADER]: id },
      body: 'ZXZlbnQ=',
      isBase64Encoded: true,
    };
    expect(requestBytes(event)).toBe(body);
    expect(requestBytes(event)).toEqual(Buffer.from('event'));
    expect(requestBytes({ headers: { [STREAMED_BODY_HEADER]: 'forged' }, body: 'plain' })).toEqual(
      Buffer.from('plain'),
    );
  });

  it('a streamed answer is lent with its length, and bytes in memory go as base64', () => {
    const stream = streamOf(Buffer.from('abc'));
    const streamed = bytesResponse({ stream, length: 3 }, 'application/octet-stream');
    expect(streamed).toMatchObject({ statusCode: 200, body: '' });
    expect(streamed.headers['content-length']).toBe('3');
    expect(claimBody(streamed.headers[STREAMED_BODY_HEADER] ?? '')?.stream).toBe(stream);
    const inline = bytesResponse(Buffer.from([0, 255]), 'application/octet-stream');
    expect(inline).toMatchObject({ body: 'AP8=', isBase64Encoded: true });
    expect(inline.headers).not.toHaveProperty(STREAMED_BODY_HEADER);
  });

  it('a stream read whole gives its bytes, whatever its pieces; one that ends short is a 422', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }),
        async (parts) => {
          const chunks = parts.map((part) => Buffer.from(part));
          const whole = Buffer.concat(chunks);
          expect(await inMemory({ stream: streamOf(...chunks), length: whole.length })).toEqual(
            whole,
          );
          await expect(
            inMemory({ stream: streamOf(...chunks), length: whole.length + 1 }),
          ).rejects.toBeInstanceOf(ValidationError);
        },
      ),
    );
  });
});
