import { apiError, ConnectionError, TimeoutError, type CallSite } from './errors.js';
import { ROUTES, type RouteRequest } from './routes.js';
import type { RouteResponses } from './types.js';
import type { RouteName } from '../lib/http/routes.js';

/** The routes that answer JSON (or nothing); the others answer bytes, read with `send`. */
type JsonRoute = Exclude<RouteName, 'readFile' | 'readArchive'>;

export interface ClientOptions {
  /** The API's base URL; default `MATRX_URL`, else http://localhost:8000. */
  url?: string;
  /** Sent as `Authorization: Bearer`; default `MATRX_API_KEY`, else none. */
  apiKey?: string;
  /** The longest a call may take, retries included, unless the call says otherwise; default 60 s. */
  timeoutMs?: number;
  /** Further attempts of an idempotent call after a 503 or a network error; default 3. */
  retries?: number;
  /** The first retry's delay; each next one doubles, with jitter; default 250 ms. */
  retryDelayMs?: number;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
}

/** What every call accepts. */
export interface CallOptions {
  signal?: AbortSignal;
  /** The longest this call may take, retries included. */
  timeoutMs?: number;
}

/** A body sent as it is (files), rather than as JSON. */
export interface RawBody {
  raw: Uint8Array | ReadableStream<Uint8Array>;
  contentType: string;
}

export interface Call<N extends RouteName> extends RouteRequest<N>, CallOptions {
  rawBody?: RawBody;
}

/** One call's where, deadline and signals, across its attempts. */
interface CallContext {
  site: CallSite;
  callerSignal: AbortSignal | undefined;
  deadline: AbortSignal;
  /** The caller's and the deadline's together. */
  signal: AbortSignal;
  timeoutMs: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_RETRY_DELAY_MS = 5_000;

function environment(): Record<string, string | undefined> {
  return typeof process === 'undefined' ? {} : process.env;
}

/** Builds `/sandboxes/sbx-1/exec?x=1` from a route's template, parameters and query. */
export function routePath(template: string, params: unknown, query: unknown): string {
  const values = (params ?? {}) as Record<string, string>;
  const path = template.replace(/\{(\w+)\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new TypeError(`missing path parameter ${name}`);
    // A URL resolves `.` and `..` segments (encoded or not): such an id would reach another route.
    if (value === '.' || value === '..') throw new TypeError(`${name} cannot be ${value}`);
    return encodeURIComponent(value);
  });
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Sends the API's requests: the key, JSON in and out, typed errors, one deadline per call, the
 * caller's AbortSignal, and retries with backoff on 503 and network errors for idempotent routes.
 */
export class Transport {
  readonly url: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly fetch: typeof fetch;

  constructor(options: ClientOptions = {}) {
    const env = environment();
    this.url = (options.url ?? env.MATRX_URL ?? 'http://localhost:8000').replace(/\/+$/, '');
    this.apiKey = options.apiKey ?? (env.MATRX_API_KEY || undefined);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = options.retries ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 250;
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** Calls route N and parses its JSON answer; a 204 gives undefined. */
  async json<N extends JsonRoute>(
    name: N,
    call: Call<N> = {},
    defaultTimeoutMs?: number,
  ): Promise<RouteResponses[N]> {
    const response = await this.send(name, call, defaultTimeoutMs);
    if (response.status === 204) return undefined as RouteResponses[N];
    return (await response.json()) as RouteResponses[N];
  }

  /** Calls route N; the answer is its success, its body unread. Anything else is thrown. */
  async send<N extends RouteName>(
    name: N,
    call: Call<N>,
    defaultTimeoutMs = this.timeoutMs,
  ): Promise<Response> {
    const route = ROUTES[name];
    const path = routePath(route.path, call.params, call.query);
    const timeoutMs = call.timeoutMs ?? defaultTimeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const context: CallContext = {
      site: { method: route.method, path: path.split('?')[0] ?? path },
      callerSignal: call.signal,
      deadline,
      signal: call.signal ? AbortSignal.any([call.signal, deadline]) : deadline,
      timeoutMs,
    };
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let body: RequestInit['body'];
    if (call.rawBody) {
      headers['content-type'] = call.rawBody.contentType;
      body = call.rawBody.raw as RequestInit['body'];
    } else if (call.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(call.body);
    }
    // A stream can be sent once only.
    const canRetry = route.idempotent && !(body instanceof ReadableStream);
    for (let attempt = 0; ; attempt += 1) {
      let response: Response;
      try {
        response = await this.fetch(`${this.url}${path}`, {
          method: route.method,
          headers,
          body,
          signal: context.signal,
          ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
        } as RequestInit);
      } catch (error) {
        const failure = this.failure(error, context);
        if (!(failure instanceof ConnectionError) || !canRetry || attempt >= this.retries) {
          throw failure;
        }
        await this.pause(attempt, null, context);
        continue;
      }
      if (response.status === route.ok) return response;
      const answer = await readError(response);
      if (response.status === 503 && canRetry && attempt < this.retries) {
        await this.pause(attempt, response.headers, context);
        continue;
      }
      throw apiError(response.status, answer, context.site);
    }
  }

  /** The caller's abort as it came; the deadline as a TimeoutError; anything else the network's. */
  private failure(error: unknown, context: CallContext): unknown {
    const { callerSignal, deadline, timeoutMs, site } = context;
    if (callerSignal?.aborted) return callerSignal.reason ?? error;
    if (deadline.aborted) {
      return new TimeoutError(`${site.method} ${site.path}: no answer within ${timeoutMs} ms`, {
        cause: error,
      });
    }
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (error as Error).message;
    return new ConnectionError(`${site.method} ${this.url}${site.path}: ${why}`, { cause: error });
  }

  /** Waits before the next attempt: Retry-After when the API gives one, else backoff. */
  private async pause(attempt: number, headers: Headers | null, context: CallContext) {
    const retryAfter = Number(headers?.get('retry-after') ?? NaN);
    const backoff = this.retryDelayMs * 2 ** attempt * (0.5 + Math.random() / 2);
    const delay = Math.min(
      Number.isFinite(retryAfter) ? retryAfter * 1000 : backoff,
      MAX_RETRY_DELAY_MS,
    );
    try {
      await sleep(delay, context.signal);
    } catch (error) {
      throw this.failure(error, context);
    }
  }
}

async function readError(response: Response): Promise<unknown> {
  const text = await response.text().catch(() => '');
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
