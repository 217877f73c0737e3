import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterEach, describe, expect, it } from '@jest/globals';
import { createS3Client, S3ObjectStorage } from '../../lib/adapters/s3/s3ObjectStorage.js';
import { UnavailableError } from '../../lib/errors.js';

const EMPTY_LISTING =
  '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><Prefix>p/</Prefix>' +
  '<IsTruncated>false</IsTruncated></ListBucketResult>';

let server: Server | undefined;
afterEach(() => new Promise<void>((done) => (server ? server.close(() => done()) : done())));

/** An S3 peer on loopback that answers each request with the next of `statuses`. */
async function s3Answering(statuses: number[]) {
  const seen = { requests: 0, bodies: [] as string[] };
  server = createServer((req, res) => {
    const status = statuses[Math.min(seen.requests, statuses.length - 1)] ?? 200;
    seen.requests += 1;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.bodies.push(Buffer.concat(chunks).toString());
      res.writeHead(status, { 'content-type': 'application/xml', etag: '"e"' });
      res.end(
        status === 200
          ? EMPTY_LISTING
          : `<Error><Code>${status === 503 ? 'SlowDown' : 'InvalidRequest'}</Code></Error>`,
      );
    });
  });
  await new Promise<void>((done) => server?.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  const settings = {
    bucket: 'b',
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${port}`,
    slowCallMs: 1000,
  };
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  const storage = new S3ObjectStorage(
    createS3Client(settings),
    settings,
    new Logger({ logLevel: 'CRITICAL' }),
  );
  return { seen, storage };
}

async function listAll(storage: S3ObjectStorage) {
  const keys = [];
  for await (const object of storage.list('p/')) keys.push(object.key);
  return keys;
}

describe('S3 retries', () => {
  it('retries throttling and 5xx with backoff, then succeeds', async () => {
    const { seen, storage } = await s3Answering([503, 500, 200]);
    expect(await listAll(storage)).toEqual([]);
    expect(seen.requests).toBe(3);
  });

  it('retries an upload with its whole body, from a stream as from a buffer', async () => {
    for (const body of [Buffer.from('hello home'), Readable.from([Buffer.from('hello home')])]) {
      const { seen, storage } = await s3Answering([503, 200]);
      await storage.put('p/file', body, 10, {});
      expect(seen.requests).toBe(2);
      expect(seen.bodies).toEqual(['hello home', 'hello home']);
      await new Promise<void>((done) => server?.close(() => done()));
      server = undefined;
    }
  });

  it('retries a download', async () => {
    const { seen, storage } = await s3Answering([500, 200]);
    const fetched = await storage.get('p/file');
    fetched.body.resume();
    expect(seen.requests).toBe(2);
  });

  it('does not retry a request S3 calls wrong, and says S3', async () => {
    const { seen, storage } = await s3Answering([400]);
    await expect(listAll(storage)).rejects.toThrow(UnavailableError);
    expect(seen.requests).toBe(1);
  });
});
