import { describe, expect, it } from '@jest/globals';
import { NotFoundError, UnavailableError, ValidationError } from '../../lib/errors.js';
import { toResponse } from '../../lib/http/errorMapper.js';
import { openApiDocument } from '../../lib/http/openapi.js';
import { loadConfig } from '../../lib/config.js';
import { buildRoutes, routeLimits } from '../../lib/http/routes.js';
import { parseRequest } from '../../lib/http/validation.js';

const routes = buildRoutes({ ...routeLimits(loadConfig({})), maxCommandLength: 20 });
const id = 'sbx-0123456789ab';

describe('parseRequest', () => {
  it('returns typed, defaulted input', () => {
    const input = parseRequest(routes.execCommand, {
      pathParameters: { sandbox_id: id },
      body: { command: 'ls' },
    });
    expect(input.body).toEqual({ command: 'ls', user: 'agent' });
    expect(input.params.sandbox_id).toBe(id);
  });

  it('a malformed sandbox id is NotFound before anything else', () => {
    expect(() =>
      parseRequest(routes.execCommand, { pathParameters: { sandbox_id: 'sbx-1' }, body: {} }),
    ).toThrow(NotFoundError);
  });

  it('collects every problem with its location', () => {
    try {
      parseRequest(routes.execCommand, {
        pathParameters: { sandbox_id: id },
        body: { command: 'x'.repeat(21), timeout: 0 },
      });
      throw new Error('expected a ValidationError');
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).issues.map((i) => i.loc)).toEqual([
        ['body', 'command'],
        ['body', 'timeout'],
      ]);
    }
  });

  it('a missing required body or field says missing', () => {
    expect(() => parseRequest(routes.createSandbox, {})).toThrow(ValidationError);
    try {
      parseRequest(routes.createSandbox, { body: {} });
    } catch (error) {
      expect((error as ValidationError).issues).toEqual([
        { loc: ['body', 'user_id'], msg: 'Field required', type: 'missing' },
      ]);
    }
  });

  it.each(['.', '..', '-x', '_x', 'a/b', 'a'.repeat(256)])('user_id %s is refused', (userId) => {
    expect(() => parseRequest(routes.createSandbox, { body: { user_id: userId } })).toThrow(
      ValidationError,
    );
  });

  it.each(['a', 'a.b', 'a..b', '0_-.', 'a'.repeat(255)])('user_id %s is accepted', (userId) => {
    expect(parseRequest(routes.createSandbox, { body: { user_id: userId } }).body.user_id).toBe(
      userId,
    );
  });

  it('delete reads graceful from the query, true by default', () => {
    const base = { pathParameters: { sandbox_id: id } };
    expect(parseRequest(routes.deleteSandbox, base).query.graceful).toBe(true);
    expect(
      parseRequest(routes.deleteSandbox, { ...base, queryStringParameters: { graceful: 'false' } })
        .query.graceful,
    ).toBe(false);
  });
});

describe('toResponse', () => {
  it('maps the taxonomy to status codes with a detail', () => {
    expect(toResponse(new NotFoundError('Sandbox x not found'))).toMatchObject({
      statusCode: 404,
      body: JSON.stringify({ detail: 'Sandbox x not found' }),
    });
    expect(toResponse(new UnavailableError('Docker engine', 'Docker engine down'))).toMatchObject({
      statusCode: 503,
    });
  });

  it('turns the JSON parser’s error into a 400', () => {
    const error = Object.assign(new Error('Invalid or malformed JSON was provided'), {
      statusCode: 415,
      cause: { package: '@middy/http-json-body-parser' },
    });
    expect(toResponse(error).statusCode).toBe(400);
  });

  it('keeps anything unexpected generic', () => {
    const response = toResponse(new Error('secret internals at /var/run'));
    expect(response.statusCode).toBe(500);
    expect(response.body).toBe(JSON.stringify({ detail: 'Internal server error' }));
  });
});

describe('openApiDocument', () => {
  it('is generated from the validating schemas', () => {
    const doc = openApiDocument(routes, '1.2.3', 'X-API-Key');
    const exec = doc.paths['/sandboxes/{sandbox_id}/exec']?.post as {
      requestBody: { content: { 'application/json': { schema: { required: string[] } } } };
    };
    expect(exec.requestBody.content['application/json'].schema.required).toEqual(['command']);
    expect(doc.info.version).toBe('1.2.3');
  });
});
