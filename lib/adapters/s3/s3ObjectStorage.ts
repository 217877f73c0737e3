import type { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NotFoundError, S3, UnavailableError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { FetchedObject, ObjectStorage, StoredObject } from '../../ports.js';
import { loggedCall } from '../callLog.js';

const DELETE_BATCH = 1000;
/** A body larger than one part goes up as a multipart upload. */
const PART_SIZE = 8 * 1024 * 1024;

export interface S3Settings {
  bucket: string;
  region: string;
  /** An S3-compatible server (LocalStack, MinIO, the embedded one): path-style addressing. */
  endpoint?: string;
  slowCallMs: number;
}

/** The S3 client, built once per process. Transient errors are retried by the SDK's own policy. */
const S3_CONNECT_TIMEOUT_MS = 5_000;
const S3_IDLE_TIMEOUT_MS = 20_000;

export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint && { endpoint: settings.endpoint, forcePathStyle: true }),
    // Throttling, 5xx and dropped connections are retried with backoff; other 4xx are not.
    maxAttempts: 5,
    retryMode: 'standard',
    // An S3 that takes a connection and never answers fails each attempt, rather than hang it.
    // Idle, not total: a long upload whose bytes keep moving is not cut.
    requestHandler: { connectionTimeout: S3_CONNECT_TIMEOUT_MS, socketTimeout: S3_IDLE_TIMEOUT_MS },
    // s3rver and some S3-compatible servers store aws-chunked framing verbatim otherwise.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Turns an SDK error into the service's taxonomy, once, at the adapter's edge. */
function toServiceError(error: unknown, what: string): Error {
  if (error instanceof S3ServiceException && error.name === 'NoSuchKey') {
    return new NotFoundError(`${what}: not found`, { cause: error });
  }
  return new UnavailableError(S3, `${S3} unavailable (${what})`, { cause: error });
}

export class S3ObjectStorage implements ObjectStorage {
  readonly bucket: string;

  constructor(
    private readonly client: S3Client,
    private readonly settings: S3Settings,
    private readonly logger: Logger,
  ) {
    this.bucket = settings.bucket;
  }

  /** Every call to S3 goes through here: logged once, its errors translated once. */
  #call<T>(
    operation: string,
    key: string | undefined,
    run: () => Promise<T>,
    bytesOf?: (result: T) => number | undefined,
  ) {
    return loggedCall(
      this.logger,
      's3',
      { operation, target: { bucket: this.bucket, key }, slowMs: this.settings.slowCallMs },
      async () => {
        try {
          return await run();
        } catch (error) {
          throw toServiceError(error, `${operation} ${key ?? this.bucket}`);
        }
      },
      bytesOf,
    );
  }

  async checkBucket(): Promise<void> {
    await this.#call('head_bucket', undefined, () =>
      this.client.send(new HeadBucketCommand({ Bucket: this.bucket })),
    );
  }

  /**
   * ListObjects (v1) with markers rather than v2: every S3-compatible server pages it the same
   * way, and s3rver's v2 continuation tokens need a cipher that OpenSSL 3 no longer offers.
   */
  async *list(prefix: string): AsyncIterable<StoredObject> {
    let marker: string | undefined;
    for (;;) {
      const page = await this.#call('list_objects', prefix, () =>
        this.client.send(
          new ListObjectsCommand({ Bucket: this.bucket, Prefix: prefix, Marker: marker }),
        ),
      );
      const contents = page.Contents ?? [];
      for (const object of contents) {
        if (object.Key) yield { key: object.Key, size: object.Size ?? 0, etag: object.ETag };
      }
      if (!page.IsTruncated || contents.length === 0) return;
      marker = page.NextMarker ?? contents[contents.length - 1]?.Key;
    }
  }

  async get(key: string): Promise<FetchedObject> {
    const response = await this.#call(
      'get_object',
      key,
      () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })),
      (got) => got.ContentLength,
    );
    return {
      body: response.Body as Readable,
      size: response.ContentLength ?? 0,
      metadata: response.Metadata ?? {},
    };
  }

  async put(
    key: string,
    body: Readable | Buffer,
    size: number,
    metadata: Record<string, string>,
  ): Promise<void> {
    await this.#call(
      size > PART_SIZE ? 'put_object_multipart' : 'put_object',
      key,
      () =>
        new Upload({
          client: this.client,
          params: {
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentLength: size,
            Metadata: metadata,
          },
          partSize: PART_SIZE,
          queueSize: 4,
          leavePartsOnError: false,
        }).done(),
      () => size,
    );
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    let deleted = 0;
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      const response = await this.#call('delete_objects', `${batch.length} keys`, () =>
        this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: false },
          }),
        ),
      );
      if (response.Errors?.length) {
        throw new UnavailableError(S3, `${S3} refused to delete ${response.Errors.length} objects`);
      }
      deleted += response.Deleted?.length ?? batch.length;
    }
    return deleted;
  }
}
