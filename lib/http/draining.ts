import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { UnavailableError } from '../errors.js';
import type { HttpResponse } from './responses.js';

/**
 * The requests in flight in this process, and whether it is shutting down: a clean stop takes no
 * new requests and lets the ones running finish.
 */
export class RequestTracker {
  #inFlight = 0;
  #draining = false;
  readonly #idleWaiters = new Set<() => void>();

  get draining(): boolean {
    return this.#draining;
  }

  track<T>(run: () => Promise<T>): Promise<T> {
    this.#inFlight += 1;
    return run().finally(() => {
      this.#inFlight -= 1;
      if (this.#inFlight === 0) for (const wake of this.#idleWaiters) wake();
    });
  }

  /** From now on requests are refused; resolves when none is in flight, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<{ unfinished: number }> {
    this.#draining = true;
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#idleWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        this.#idleWaiters.add(done);
      });
    }
    return { unfinished: this.#inFlight };
  }
}

/** Refuses new requests once draining: the caller (or its load balancer) tries another host. */
export function refuseWhileDraining(
  requests: RequestTracker,
): MiddlewareObj<APIGatewayProxyEvent, HttpResponse> {
  return {
    before: async () => {
      if (requests.draining) {
        throw new UnavailableError('orchestrator', 'The service is shutting down: retry shortly');
      }
    },
  };
}
