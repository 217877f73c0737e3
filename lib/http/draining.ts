import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { UnavailableError } from '../errors.js';
import type { HttpResponse } from './responses.js';

/**
 * Requests in flight in this process, and whether it is shutting down: a clean stop takes no new
 * requests and lets the ones running finish.
 */
let inFlight = 0;
let draining = false;
const idleWaiters = new Set<() => void>();

export function trackRequest<T>(run: () => Promise<T>): Promise<T> {
  inFlight += 1;
  return run().finally(() => {
    inFlight -= 1;
    if (inFlight === 0) for (const wake of idleWaiters) wake();
  });
}

/** From now on requests are refused; resolves when none is in flight, or after `timeoutMs`. */
export async function drain(timeoutMs: number): Promise<{ unfinished: number }> {
  draining = true;
  if (inFlight > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        idleWaiters.delete(done);
        resolve();
      }
      idleWaiters.add(done);
    });
  }
  return { unfinished: inFlight };
}

/** Refuses new requests once draining: the caller (or its load balancer) tries another host. */
export function refuseWhileDraining(): MiddlewareObj<APIGatewayProxyEvent, HttpResponse> {
  return {
    before: async () => {
      if (draining) {
        throw new UnavailableError('orchestrator', 'The service is shutting down: retry shortly');
      }
    },
  };
}
