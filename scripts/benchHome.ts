import { randomBytes } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { EMBEDDED_BUCKET, embeddedS3Client, type EmbeddedS3 } from '../lib/embeddedS3.js';
import { inParallel, timed, type Call } from './benchClient.js';

const FILES = 1000;
const FILE_BYTES = 50 * 1024;

export interface HomeTimings {
  save: number[];
  restore: number[];
  rawUpload: number[];
  rawDownload: number[];
}

/**
 * Save and restore of 1,000 files / 50 MB through the API, next to a plain upload and download
 * of as many files of the same size to the same S3 server. The API's save and restore are read as
 * the difference between a sandbox with that home and one with an empty home, so the container's
 * own start and stop are left out.
 */
export async function benchHomes(call: Call, s3: EmbeddedS3, user: string, rounds: number) {
  const client = embeddedS3Client(s3);
  const timings: HomeTimings = { save: [], restore: [], rawUpload: [], rawDownload: [] };
  const create = async (userId: string) =>
    String((await call('POST', '/sandboxes', { user_id: userId })).sandbox_id);
  try {
    for (let round = 0; round < rounds; round += 1) {
      const full = `${user}-home-${round}`;
      const empty = `${user}-empty-${round}`;
      const writer = await create(full);
      await call('POST', `/sandboxes/${writer}/exec`, {
        command: `mkdir -p work && for i in $(seq 1 ${FILES}); do head -c ${FILE_BYTES} /dev/urandom > work/f$i; done`,
        timeout: 300,
      });
      const emptyOne = await create(empty);
      const deleteEmpty = await timed(() => call('DELETE', `/sandboxes/${emptyOne}`));
      const deleteFull = await timed(() => call('DELETE', `/sandboxes/${writer}`));
      timings.save.push(deleteFull - deleteEmpty);

      let reader = '';
      const createEmpty = await timed(async () => {
        reader = await create(empty);
      });
      await call('DELETE', `/sandboxes/${reader}`);
      const createFull = await timed(async () => {
        reader = await create(full);
      });
      await call('DELETE', `/sandboxes/${reader}`);
      timings.restore.push(createFull - createEmpty);

      const bodies = Array.from({ length: FILES }, () => randomBytes(FILE_BYTES));
      const key = (i: number) => `bench-raw/${user}/${round}/f${i}`;
      timings.rawUpload.push(
        await timed(() =>
          inParallel(FILES, async (i) => {
            await client.send(
              new PutObjectCommand({ Bucket: EMBEDDED_BUCKET, Key: key(i), Body: bodies[i] }),
            );
          }),
        ),
      );
      timings.rawDownload.push(
        await timed(() =>
          inParallel(FILES, async (i) => {
            const object = await client.send(
              new GetObjectCommand({ Bucket: EMBEDDED_BUCKET, Key: key(i) }),
            );
            await object.Body?.transformToByteArray();
          }),
        ),
      );
    }
  } finally {
    client.destroy();
  }
  return timings;
}
