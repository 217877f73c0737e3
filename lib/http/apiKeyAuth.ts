import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import { headerValue } from './headers.js';

export interface ApiKeySettings {
  /** Accepted keys; empty means the API is open. */
  keys: readonly string[];
  /** Header that carries the key, besides `Authorization: Bearer`. */
  headerName: string;
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

function presentedKey(
  event: Pick<APIGatewayProxyEvent, 'headers'>,
  headerName: string,
): string | undefined {
  const direct = headerValue(event, headerName)?.trim();
  if (direct) return direct;
  const bearer = /^Bearer\s+(.+)$/i.exec(headerValue(event, 'authorization')?.trim() ?? '');
  return bearer?.[1]?.trim() || undefined;
}

/**
 * Compares digests, which have one length whatever the key's, so neither the key nor its length
 * leaks through timing; every configured key is compared, matched or not.
 */
function isAcceptedKey(presented: string, keys: readonly Buffer[]): boolean {
  const candidate = digest(presented);
  let accepted = false;
  for (const key of keys) accepted = timingSafeEqual(candidate, key) || accepted;
  return accepted;
}

/** The API key check of every endpoint but /health; it runs before body parsing. */
export function apiKeyAuth({
  keys,
  headerName,
}: ApiKeySettings): MiddlewareObj<APIGatewayProxyEvent, unknown> {
  const digests = keys.map(digest);
  return {
    before: async (request) => {
      if (keys.length === 0) return;
      const presented = presentedKey(request.event, headerName);
      if (!presented) {
        throw new UnauthorizedError(
          `Missing API key: send it in the ${headerName} header or as Authorization: Bearer`,
        );
      }
      if (!isAcceptedKey(presented, digests)) throw new ForbiddenError('Invalid API key');
    },
  };
}
