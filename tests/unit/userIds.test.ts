import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { loadConfig } from '../../lib/config.js';
import { ValidationError } from '../../lib/errors.js';
import { buildRoutes, routeLimits, type RouteSpec } from '../../lib/http/routes.js';
import { parseRequest, type RawRequest } from '../../lib/http/validation.js';

const routes: Record<string, RouteSpec> = buildRoutes(routeLimits(loadConfig({})));

type Place = 'path' | 'query' | 'body';

/** Every place of every route that takes a `user_id`, found in the route specs themselves. */
const takers = Object.entries(routes).flatMap(([name, route]) =>
  (
    [
      ['path', route.params],
      ['query', route.query],
      ['body', route.body],
    ] as const
  )
    .filter(([, schema]) => schema instanceof z.ZodObject && 'user_id' in schema.shape)
    .map(([place]) => ({ name, route, place: place as Place })),
);

/** A request that is valid but for its user id: the other fields as each route needs them. */
function requestWith(place: Place, userId: string): RawRequest {
  const fields = { user_id: userId };
  if (place === 'path') return { pathParameters: fields, queryStringParameters: { tier: 'hot' } };
  if (place === 'query') return { queryStringParameters: fields };
  return { body: fields };
}

describe('user ids, everywhere a route takes one', () => {
  it('are taken by create (body), list (query) and both storage routes (path)', () => {
    expect(takers.map(({ name, place }) => `${name}:${place}`).sort()).toEqual([
      'createSandbox:body',
      'deleteStorage:path',
      'getStorage:path',
      'listSandboxes:query',
    ]);
  });

  const cases = takers.flatMap(({ name, route, place }) =>
    ['.', '..', '.x', '..x', '-x', '_x', '', 'a/b', 'a\0', 'a'.repeat(256)].map(
      (userId) => [name, userId, place, route] as const,
    ),
  );
  it.each(cases)('%s refuses user_id %j in the %s', (_name, userId, place, route) => {
    try {
      parseRequest(route, requestWith(place, userId));
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).issues.map((issue) => issue.loc)).toContainEqual([
        place,
        'user_id',
      ]);
    }
  });

  it.each(takers)('$name accepts an id that starts with a letter or digit', ({ route, place }) => {
    expect(() => parseRequest(route, requestWith(place, 'a.b_c-1'))).not.toThrow();
    expect(() => parseRequest(route, requestWith(place, '0..x'))).not.toThrow();
  });
});
