import { STREAMED_BODY_HEADER, claimBody, lendBody } from './streamedBodies.js';
import type { Bytes } from '../domain/bytes.js';

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  /** The body is base64 of raw bytes: the server sends the bytes. */
  isBase64Encoded?: boolean;
}

export function json(statusCode: number, body: unknown): HttpResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}

export function noContent(): HttpResponse {
  return { statusCode: 204, headers: {}, body: '' };
}

/**
 * Raw bytes, as they are: in memory the Lambda way (base64, which the server decodes), a stream
 * lent to the server, which sends it as it comes.
 */
export function bytesResponse(bytes: Bytes, mediaType: string): HttpResponse {
  const headers = { 'content-type': mediaType, 'content-length': String(bytes.length) };
  if (!Buffer.isBuffer(bytes)) {
    return {
      statusCode: 200,
      headers: { ...headers, [STREAMED_BODY_HEADER]: lendBody(bytes) },
      body: '',
    };
  }
  return { statusCode: 200, headers, body: bytes.toString('base64'), isBase64Encoded: true };
}

interface RequestEvent {
  body?: string | null;
  isBase64Encoded?: boolean;
  headers?: Record<string, string | undefined> | null;
}

/**
 * The raw bytes of a request's body: the stream the server lent, or the event's body (binary
 * bodies come as base64).
 */
export function requestBytes(event: RequestEvent): Bytes {
  const id = event.headers?.[STREAMED_BODY_HEADER];
  const lent = id === undefined ? undefined : claimBody(id);
  if (lent) return lent;
  const body = event.body ?? '';
  return event.isBase64Encoded ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8');
}
