import { Server } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/**
 * Makes every server of this process that listens on `port` listen on 127.0.0.1 alone, whatever
 * address it asks for.
 *
 * serverless-offline 13 binds its Lambda invoke endpoint to the same `--host` as the HTTP API and
 * has no option to bind it elsewhere; that endpoint runs any function (the reconcile pass too)
 * with no API key. The API process preloads this before the framework starts, so the endpoint is
 * reachable from this host only while the API follows MATRX_HOST. Returns the undoing.
 */
export function keepPortOnLoopback(port: number): () => void {
  const listen = Server.prototype.listen;
  // Reassigning the method loses its overloads: the arguments are passed on as they came.
  Server.prototype.listen = function listenOnLoopback(this: Server, ...args: unknown[]) {
    return Reflect.apply(listen, this, onLoopback(port, args)) as Server;
  } as typeof listen;
  return () => {
    Server.prototype.listen = listen;
  };
}

/** The listen arguments, with the address replaced when they name `port`. */
export function onLoopback(port: number, args: unknown[]): unknown[] {
  const [first, second, ...rest] = args;
  if (typeof first === 'object' && first !== null && !Array.isArray(first)) {
    const options = first as { port?: unknown; host?: unknown; path?: unknown };
    if (options.path === undefined && Number(options.port) === port) {
      return [{ ...options, host: LOOPBACK }, ...args.slice(1)];
    }
    return args;
  }
  if ((typeof first === 'number' || typeof first === 'string') && Number(first) === port) {
    // listen(port, callback) and listen(port, host, ...): the address comes right after the port.
    return typeof second === 'function' || second === undefined
      ? [first, LOOPBACK, ...args.slice(1)]
      : [first, LOOPBACK, ...rest];
  }
  return args;
}
