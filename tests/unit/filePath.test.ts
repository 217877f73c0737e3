import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { filePathProblem, normalizeFilePath } from '../../lib/domain/filePath.js';
import { loadConfig } from '../../lib/config.js';
import { ValidationError } from '../../lib/errors.js';
import { buildRoutes, routeLimits } from '../../lib/http/routes.js';
import { parseRequest } from '../../lib/http/validation.js';

const routes = buildRoutes(routeLimits(loadConfig({})));
const pathParameters = { sandbox_id: 'sbx-0123456789ab' };

/** The path a stat request ends up with, or the 422's message. */
function parsed(path: string): string {
  try {
    return parseRequest(routes.statFile, { pathParameters, queryStringParameters: { path } }).query
      .path;
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return `422 ${error.issues.map((issue) => issue.msg).join('; ')}`;
  }
}

/** Segments of the kinds that matter: names, dots, empty ones, odd bytes. */
const segment = fc.oneof(
  fc.constantFrom('', '.', '..', '...', 'a', '.a', 'a..', ' ', '\0', 'é', '\n'),
  fc.string({ maxLength: 6 }),
);
const anyPath = fc.oneof(
  fc.array(segment, { maxLength: 8 }).map((segments) => segments.join('/')),
  fc.string(),
);

describe('a file path of the Files API', () => {
  it('is accepted exactly when absolute, without a .. segment and without NUL', () => {
    fc.assert(
      fc.property(anyPath, (path) => {
        const acceptable =
          path.startsWith('/') && !path.includes('\0') && !path.split('/').includes('..');
        expect(filePathProblem(path) === null).toBe(acceptable);
        expect(parsed(path).startsWith('422 ')).toBe(!acceptable);
      }),
    );
  });

  it('is normalized once accepted: one spelling, the same segments, idempotent', () => {
    fc.assert(
      fc.property(anyPath, (path) => {
        fc.pre(filePathProblem(path) === null);
        const normal = normalizeFilePath(path);
        expect(normal.startsWith('/')).toBe(true);
        expect(normal === '/' || !normal.endsWith('/')).toBe(true);
        expect(normal.split('/').slice(1)).not.toContain('.');
        expect(normal.includes('//')).toBe(false);
        expect(normalizeFilePath(normal)).toBe(normal);
        expect(filePathProblem(normal)).toBeNull();
        const kept = path.split('/').filter((s) => s !== '' && s !== '.');
        expect(normal).toBe(`/${kept.join('/')}`);
        expect(parsed(path)).toBe(normal);
      }),
    );
  });

  it('says why it is refused', () => {
    expect(parsed('home/agent')).toBe('422 must be an absolute path');
    expect(parsed('/home/../etc')).toBe('422 must not contain a .. segment');
    expect(parsed('/home/a\0b')).toBe('422 must not contain a NUL byte');
    expect(parsed('//home/./agent/')).toBe('/home/agent');
    expect(parsed('/a/..b/c..')).toBe('/a/..b/c..');
  });
});
