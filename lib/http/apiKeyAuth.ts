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
  /** true: GET /docs, its files and /openapi.json need no key (MATRX_PUBLIC_DOCS). */
  publicDocs?: boolean;
}

/** The pages that describe the API, and nothing else: no route of the API itself. */
function isDocsRequest(event: Pick<APIGatewayProxyEvent, 'httpMethod' | 'path'>): boolean {
  const { httpMethod, path } = event;
  if (httpMethod !== 'GET' && httpMethod !== 'HEAD') return false;
  return path === '/openapi.json' || path === '/docs' || /^\/docs\/[^/]+$/.test(path);
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
  publicDocs = false,
}: ApiKeySettings): MiddlewareObj<APIGatewayProxyEvent, unknown> {
  const digests = keys.map(digest);
  return {
    before: async (request) => {
      if (keys.length === 0) return;
      if (publicDocs && isDocsRequest(request.event)) return;
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
