import type { MiddlewareObj } from '@middy/core';
import { ServiceError, UnauthorizedError, ValidationError } from '../errors.js';
import { json, type HttpResponse } from './responses.js';

interface MiddyHttpError {
  statusCode?: number;
  expose?: boolean;
  cause?: { package?: string };
  name?: string;
}

/**
 * The one place errors become HTTP. 5xx bodies stay generic; the request log has the cause.
 */
export function errorMapper(): MiddlewareObj<unknown, HttpResponse> {
  return {
    onError: async (request) => {
      request.response = toResponse(request.error);
    },
  };
}

export function toResponse(error: unknown): HttpResponse {
  if (error instanceof ValidationError) return json(422, { detail: error.issues });
  if (error instanceof UnauthorizedError) {
    const response = json(401, { detail: error.message });
    response.headers['www-authenticate'] = 'Bearer realm="matrx-sandbox-orchestrator"';
    return response;
  }
  if (error instanceof ServiceError) return json(error.statusCode, { detail: error.message });
  const httpError = (typeof error === 'object' && error !== null ? error : {}) as MiddyHttpError;
  if (httpError.cause?.package === '@middy/http-json-body-parser') {
    return json(400, { detail: 'Malformed JSON in request body' });
  }
  if (httpError.name === 'TimeoutError') return json(504, { detail: 'The request took too long' });
  return json(500, { detail: 'Internal server error' });
}
