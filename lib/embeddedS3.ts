import { mkdirSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export const EMBEDDED_BUCKET = 'matrx-dev';
/** s3rver accepts any signature; these only satisfy the SDK, which wants some credentials. */
const EMBEDDED_CREDENTIALS = 'S3RVER';

export interface EmbeddedS3 {
  endpoint: string;
  bucket: string;
  /** The variables that point the SDK (in this and child processes) at it. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** A client of the embedded server, for tests and the benchmark that talk to it directly. */
export function embeddedS3Client(s3: EmbeddedS3): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: EMBEDDED_CREDENTIALS, secretAccessKey: EMBEDDED_CREDENTIALS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** A development S3 on loopback, for when no S3 is configured. Data stays in `directory`. */
export async function startEmbeddedS3(directory: string, port: number): Promise<EmbeddedS3> {
  mkdirSync(directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port,
    silent: true,
    directory,
    configureBuckets: [{ name: EMBEDDED_BUCKET }],
  });
  const address = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;
  return {
    endpoint,
    bucket: EMBEDDED_BUCKET,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      MATRX_S3_BUCKET: EMBEDDED_BUCKET,
      AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS,
    },
    close: () => server.close(),
  };
}
