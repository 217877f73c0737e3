import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  ApiError,
  ConflictError,
  Sandboxes,
  TimeoutError,
  UnavailableError,
  ValidationError,
} from '../../client/index.js';
import { routePath } from '../../client/http.js';

const SANDBOX = {
  sandbox_id: 'sbx-0123456789ab',
  status: 'running',
};

/** A fetch that answers from a script, one answer per call, and records the calls. */
function scripted(...answers: (Response | Error | 'hang')[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(input), init: init ?? {} });
    const answer = answers.shift() ?? new Error('no more answers');
    if (answer === 'hang') {
      return new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason));
      });
    }
    if (answer instanceof Error) throw answer;
    return answer;
  };
  const client = new Sandboxes({
    url: 'http://matrx.test/',
    apiKey: 'k',
    retryDelayMs: 1,
    fetch: fetch as typeof globalThis.fetch,
  });
  return { client, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
const unavailable = () => json(503, { detail: 'Docker engine unavailable' });
const networkError = () => new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });

describe('the client transport', () => {
  it('sends the key as a bearer token, JSON in, and builds the path and query', async () => {
    const { client, calls } = scripted(json(200, { processes: [] }), json(200, SANDBOX));
    await client.connect('sbx-0123456789ab').processes.list();
    await client.connect('sbx-0123456789ab').extend(600);
    expect(calls.map((c) => [c.init.method, c.url])).toEqual([
      ['GET', 'http://matrx.test/sandboxes/sbx-0123456789ab/processes'],
      ['POST', 'http://matrx.test/sandboxes/sbx-0123456789ab/extend'],
    ]);
    const headers = calls[1]?.init.headers as Record<string, string>;
    expect(headers.authorization).toBe('Bearer k');
    expect(headers['content-type']).toBe('application/json');
    expect(calls[1]?.init.body).toBe('{"ttl_seconds":600}');
  });

  it('retries an idempotent call after a 503 or a network error, with Retry-After', async () => {
    const { client, calls } = scripted(
      unavailable(),
      networkError(),
      json(503, { detail: 'shutting down' }, { 'retry-after': '0' }),
      json(200, SANDBOX),
    );
    expect((await client.get('sbx-0123456789ab')).info).toEqual(SANDBOX);
    expect(calls).toHaveLength(4);
  });

  it('gives up after its retries with the last answer', async () => {
    const { client, calls } = scripted(unavailable(), unavailable(), unavailable(), unavailable());
    const error = await client.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error).toMatchObject({ status: 503, detail: 'Docker engine unavailable' });
    expect(calls).toHaveLength(4);
  });

  it('never retries a call that is not idempotent', async () => {
    const exec = scripted(unavailable(), json(200, {}));
    const sandbox = exec.client.connect('sbx-0123456789ab');
    await expect(sandbox.exec('true')).rejects.toBeInstanceOf(UnavailableError);
    expect(exec.calls).toHaveLength(1);
    const create = scripted(networkError(), json(201, SANDBOX));
    await expect(create.client.create('alice')).rejects.toMatchObject({ name: 'ConnectionError' });
    expect(create.calls).toHaveLength(1);
  });

  it('maps statuses to typed errors with the API’s detail', async () => {
    const { client } = scripted(
      json(409, { detail: 'Sandbox is not running' }),
      json(422, { detail: [{ loc: ['body', 'cwd'], msg: 'must be absolute', type: 'custom' }] }),
      json(413, { detail: 'Too large' }),
      new Response('<html>oops</html>', { status: 500 }),
    );
    const sandbox = client.connect('sbx-0123456789ab');
    const conflict = await sandbox.heartbeat().catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as Error).message).toBe('409 Sandbox is not running');
    const invalid = await sandbox.exec('x', { cwd: 'x' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect((invalid as ValidationError).issues[0]?.loc).toEqual(['body', 'cwd']);
    expect((invalid as Error).message).toBe('422 body.cwd: must be absolute');
    const tooLarge = await sandbox.heartbeat().catch((e: unknown) => e);
    expect(tooLarge).toBeInstanceOf(ApiError);
    expect(tooLarge).toMatchObject({ status: 413, detail: 'Too large' });
    await expect(sandbox.heartbeat()).rejects.toMatchObject({
      status: 500,
      detail: '<html>oops</html>',
    });
  });

  it('ends a call at its timeout, retries included, and passes an abort through', async () => {
    const slow = scripted('hang');
    const timedOut = slow.client.list({ timeoutMs: 50 });
    await expect(timedOut).rejects.toBeInstanceOf(TimeoutError);
    const aborted = scripted('hang');
    const controller = new AbortController();
    const call = aborted.client.list({ signal: controller.signal });
    controller.abort();
    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
    expect(aborted.calls).toHaveLength(1);
  });

  it('builds paths that encode parameters and leave out absent query values', () => {
    fc.assert(
      fc.property(fc.string(), fc.option(fc.integer(), { nil: undefined }), (id, offset) => {
        if (id === '.' || id === '..') {
          expect(() => routePath('/s/{sandbox_id}', { sandbox_id: id }, {})).toThrow(TypeError);
          return;
        }
        const path = routePath('/sandboxes/{sandbox_id}/x', { sandbox_id: id }, { a: offset });
        const url = new URL(path, 'http://h');
        expect(decodeURIComponent(url.pathname.split('/')[2] ?? '')).toBe(id);
        expect(url.searchParams.get('a')).toBe(offset === undefined ? null : String(offset));
      }),
    );
  });
});
