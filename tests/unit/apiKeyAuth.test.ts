import { describe, expect, it } from '@jest/globals';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { apiKeyAuth } from '../../lib/http/apiKeyAuth.js';
import { ForbiddenError, UnauthorizedError } from '../../lib/errors.js';

function check(
  keys: string[],
  headers: Record<string, string>,
  headerName = 'X-API-Key',
  where: { httpMethod?: string; path?: string; publicDocs?: boolean } = {},
) {
  const middleware = apiKeyAuth({ keys, headerName, publicDocs: where.publicDocs });
  const { httpMethod = 'GET', path = '/sandboxes' } = where;
  const request = { event: { headers, httpMethod, path } as unknown as APIGatewayProxyEvent };
  // middy passes a full request; the check reads only the event's method, path and headers.
  return middleware.before?.(request as never);
}

describe('apiKeyAuth', () => {
  it('no key: 401', async () => {
    await expect(check(['k1'], {})).rejects.toThrow(UnauthorizedError);
    await expect(check(['k1'], { authorization: 'Basic abc' })).rejects.toThrow(UnauthorizedError);
    await expect(check(['k1'], { 'x-api-key': '   ' })).rejects.toThrow(UnauthorizedError);
  });

  it('wrong key, of the same or another length: 403', async () => {
    await expect(check(['secret'], { 'X-API-Key': 'secreT' })).rejects.toThrow(ForbiddenError);
    await expect(check(['secret'], { 'X-API-Key': 'a-much-longer-key' })).rejects.toThrow(
      ForbiddenError,
    );
    await expect(check(['secret'], { Authorization: 'Bearer nope' })).rejects.toThrow(
      ForbiddenError,
    );
  });

  it('right key in each header form passes, header names matched case-insensitively', async () => {
    const forms: Record<string, string>[] = [
      { 'X-API-Key': 'secret' },
      { 'x-api-key': 'secret' },
      { 'X-API-KEY': 'secret' },
      { Authorization: 'Bearer secret' },
      { authorization: 'bearer secret' },
    ];
    for (const headers of forms) {
      await expect(check(['secret'], headers)).resolves.toBeUndefined();
    }
  });

  it('accepts any of several keys (rotation)', async () => {
    await expect(check(['old', 'new'], { 'x-api-key': 'old' })).resolves.toBeUndefined();
    await expect(check(['old', 'new'], { 'x-api-key': 'new' })).resolves.toBeUndefined();
    await expect(check(['old', 'new'], { 'x-api-key': 'other' })).rejects.toThrow(ForbiddenError);
  });

  it('no keys configured: open', async () => {
    await expect(check([], {})).resolves.toBeUndefined();
  });

  it('reads the key from the configured header name', async () => {
    await expect(
      check(['secret'], { 'x-service-token': 'secret' }, 'X-Service-Token'),
    ).resolves.toBeUndefined();
    await expect(check(['secret'], { 'x-api-key': 'secret' }, 'X-Service-Token')).rejects.toThrow(
      UnauthorizedError,
    );
  });

  it('never puts the key in its messages', async () => {
    const error = await check(['secret'], { 'x-api-key': 'guess' })?.catch((e: Error) => e);
    expect(String((error as Error).message)).not.toContain('guess');
    expect(String((error as Error).message)).not.toContain('secret');
  });

  it('MATRX_PUBLIC_DOCS lets GET /docs, its files and /openapi.json through, nothing else', async () => {
    const publicDocs = (httpMethod: string, path: string) =>
      check(['secret'], {}, 'X-API-Key', { httpMethod, path, publicDocs: true });
    for (const path of ['/docs', '/docs/swagger-ui.css', '/openapi.json']) {
      await expect(publicDocs('GET', path)).resolves.toBeUndefined();
      const keyed = check(['secret'], {}, 'X-API-Key', { path, publicDocs: false });
      await expect(keyed).rejects.toThrow(UnauthorizedError);
    }
    for (const [method, path] of [
      ['POST', '/openapi.json'],
      ['GET', '/docs/a/b'],
      ['GET', '/docsx'],
      ['GET', '/sandboxes'],
      ['GET', '/'],
    ] as const) {
      await expect(publicDocs(method, path)).rejects.toThrow(UnauthorizedError);
    }
  });
});
