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

/** Raw bytes, as they are (the Lambda way: base64, which the server decodes). */
export function bytesResponse(bytes: Buffer, mediaType: string): HttpResponse {
  return {
    statusCode: 200,
    headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
    body: bytes.toString('base64'),
    isBase64Encoded: true,
  };
}

/** The raw bytes of a request's body (serverless-offline sends binary bodies as base64). */
export function requestBytes(event: { body?: string | null; isBase64Encoded?: boolean }): Buffer {
  const body = event.body ?? '';
  return event.isBase64Encoded ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8');
}
