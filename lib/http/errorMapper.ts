import type { MiddlewareObj } from '@middy/core';
import { ServiceError, UnauthorizedError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { json, type HttpResponse } from './responses.js';

interface MiddyHttpError {
  statusCode?: number;
  expose?: boolean;
  cause?: { package?: string };
  name?: string;
}

/** The one place errors become HTTP: registered first in the stack, so its onError runs last. */
export function errorMapper(logger: () => Logger): MiddlewareObj<unknown, HttpResponse> {
  return {
    onError: async (request) => {
      request.response = toResponse(request.error, logger());
    },
  };
}

export function toResponse(error: unknown, logger: Logger): HttpResponse {
  if (error instanceof ValidationError) return json(422, { detail: error.issues });
  if (error instanceof UnauthorizedError) {
    const response = json(401, { detail: error.message });
    response.headers['www-authenticate'] = 'Bearer realm="matrx-sandbox-orchestrator"';
    return response;
  }
  if (error instanceof ServiceError) {
    if (error.statusCode >= 500) logger.error(error.message, { error: error.cause ?? error });
    return json(error.statusCode, { detail: error.message });
  }
  const httpError = (typeof error === 'object' && error !== null ? error : {}) as MiddyHttpError;
  if (httpError.cause?.package === '@middy/http-json-body-parser') {
    return json(400, { detail: 'Malformed JSON in request body' });
  }
  if (httpError.name === 'TimeoutError') {
    logger.error('handler timed out', { error });
    return json(504, { detail: 'The request took too long' });
  }
  logger.error('unhandled error', { error });
  return json(500, { detail: 'Internal server error' });
}
