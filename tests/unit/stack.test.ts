import { describe, expect, it } from '@jest/globals';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { NotFoundError } from '../../lib/errors.js';
import { RequestTracker } from '../../lib/http/draining.js';
import { json } from '../../lib/http/responses.js';
import {
  baseStack,
  jsonBodyWhenPresent,
  served,
  type StackDependencies,
} from '../../lib/http/stack.js';
import type { Logger } from '../../lib/logger.js';

/** The shared middleware in a real middy() stack, with their dependencies passed in. */
function stackWith(
  handle: () => Promise<ReturnType<typeof json>>,
  requiresKey = true,
  context: Partial<Context> = {},
) {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const record = (level: string) => (message: string, fields: Record<string, unknown>) =>
    lines.push({ level, message, fields });
  // The middleware call these four only.
  const logger = {
    debug: record('DEBUG'),
    info: record('INFO'),
    warn: record('WARNING'),
    error: record('ERROR'),
  } as unknown as Logger;
  const deps: StackDependencies = {
    logger,
    apiKey: { keys: ['right-key'], headerName: 'X-API-Key' },
    requests: new RequestTracker(),
  };
  const handler = served(deps, baseStack(deps, { requiresKey }).handler(handle));
  const call = (headers: Record<string, string> = {}) =>
    handler(
      {
        httpMethod: 'GET',
        path: '/sandboxes',
        resource: '/sandboxes',
        headers,
        pathParameters: null,
        queryStringParameters: null,
        body: null,
      } as unknown as APIGatewayProxyEvent,
      context as Context,
    );
  return { call, lines, deps };
}

const ok = async () => json(200, { fine: true });

describe('the shared middleware stack', () => {
  it('refuses a missing key with 401 and WWW-Authenticate, a wrong one with 403, before the handler', async () => {
    let ran = 0;
    const { call, lines } = stackWith(async () => {
      ran += 1;
      return ok();
    });
    const missing = await call();
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toContain('Bearer');
    expect(JSON.parse(missing.body)).toEqual({ detail: expect.stringContaining('X-API-Key') });
    expect((await call({ 'x-api-key': 'wrong' })).statusCode).toBe(403);
    expect(ran).toBe(0);
    expect(lines.map((line) => [line.level, line.fields.status])).toEqual([
      ['WARNING', 401],
      ['WARNING', 403],
    ]);
  });

  it('passes the right key, and a public route needs none', async () => {
    expect((await stackWith(ok).call({ 'X-API-Key': 'right-key' })).statusCode).toBe(200);
    expect((await stackWith(ok, false).call()).statusCode).toBe(200);
  });

  it('maps the taxonomy, keeps 5xx bodies generic, and logs the cause', async () => {
    const notFound = stackWith(async () => {
      throw new NotFoundError('Sandbox sbx-000000000000 not found');
    });
    const reply = await notFound.call({ 'x-api-key': 'right-key' });
    expect([reply.statusCode, JSON.parse(reply.body)]).toEqual([
      404,
      { detail: 'Sandbox sbx-000000000000 not found' },
    ]);
    const crash = stackWith(async () => {
      throw new Error('secret internals');
    });
    const failed = await crash.call({ 'x-api-key': 'right-key' });
    expect([failed.statusCode, failed.body]).toEqual([500, '{"detail":"Internal server error"}']);
    expect(crash.lines[0]).toMatchObject({ level: 'ERROR', fields: { status: 500 } });
    expect(String((crash.lines[0]?.fields.error as Error).message)).toBe('secret internals');
  });

  it("answers 504 at the function's time limit itself (the server runs with no timer of its own)", async () => {
    const slow = stackWith(
      () => new Promise((resolve) => setTimeout(() => resolve(json(200, {})), 500)),
      true,
      {
        getRemainingTimeInMillis: () => 50,
      },
    );
    const reply = await slow.call({ 'x-api-key': 'right-key' });
    expect([reply.statusCode, JSON.parse(reply.body)]).toEqual([
      504,
      { detail: 'The request took too long' },
    ]);
  });

  it('echoes a sane X-Request-Id and logs every request once with it', async () => {
    const { call, lines } = stackWith(ok);
    const reply = await call({ 'x-api-key': 'right-key', 'X-Request-Id': 'req-42' });
    expect(reply.headers['x-request-id']).toBe('req-42');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'INFO',
        message: 'request',
        fields: expect.objectContaining({ request_id: 'req-42', status: 200 }),
      }),
    ]);
  });

  it('refuses new requests with a 503 once draining, and the drain waits for those in flight', async () => {
    let finish: () => void = () => undefined;
    let entered: () => void = () => undefined;
    const running = new Promise<void>((resolve) => (entered = resolve));
    const { call, deps } = stackWith(
      () =>
        new Promise((resolve) => {
          entered();
          finish = () => resolve(json(200, {}));
        }),
    );
    const inFlight = call({ 'x-api-key': 'right-key' });
    await running;
    const drained = deps.requests.drain(10_000);
    const refused = await call({ 'x-api-key': 'right-key' });
    expect(refused.statusCode).toBe(503);
    finish();
    expect((await inFlight).statusCode).toBe(200);
    expect(await drained).toEqual({ unfinished: 0 });
  });
});

describe('the JSON body', () => {
  const parse = async (body: unknown) => {
    const request = { event: { body, headers: {} } };
    await jsonBodyWhenPresent().before?.(request as never);
    return request.event.body;
  };

  it.each([
    ['a JSON object', '{"a":1}', { a: 1 }],
    ['none', null, undefined],
    ['a blank one', ' \n', undefined],
    // serverless-offline parses a body it takes for JSON, and passes a falsy result on as it is.
    ['false, parsed by the framework', false, false],
    ['0, parsed by the framework', 0, 0],
  ])('%s', async (_name, body, expected) => {
    expect(await parse(body)).toEqual(expected);
  });
});
