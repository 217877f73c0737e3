import { posix } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { isStorablePath, TIERS, userKey, type Tier } from '../../lib/domain/storage.js';
import { ValidationError } from '../../lib/errors.js';
import { userId as userIdSchema } from '../../lib/http/schemas.js';

/** Strings rich in what makes keys go astray: dots, slashes, NUL, backslashes, escapes. */
const tricky = fc.oneof(
  fc.string(),
  fc.fullUnicodeString(),
  fc.stringOf(fc.constantFrom('.', '/', 'a', '0', '-', '_', '\0', '\\', '%2e', ' ', 'é'), {
    maxLength: 12,
  }),
  fc.constantFrom('', '.', '..', '.x', '..x', 'a/..', '../a', 'a/../..', '/a', 'a//b', 'a/'),
);
/** Ids near the valid ones, and paths of segments that are often `.`, `..` or empty. */
const idLike = fc.oneof(tricky, fc.stringMatching(/^[a-zA-Z0-9.][a-zA-Z0-9._/-]{0,12}$/));
const pathLike = fc.oneof(
  tricky,
  fc
    .array(fc.stringOf(fc.constantFrom('.', 'a', '_'), { maxLength: 3 }), { maxLength: 5 })
    .map((segments) => segments.join('/')),
);
const tier = fc.constantFrom<Tier>(...TIERS);

/** Either a ValidationError, or the key; anything else thrown fails the property. */
function keyOrRefused(userId: string, t: Tier, path: string): string | null {
  try {
    return userKey(userId, t, path);
  } catch (error) {
    if (error instanceof ValidationError) return null;
    throw error;
  }
}

describe('userKey', () => {
  it('names a user tier prefix and the objects under it', () => {
    expect(userKey('alice', 'hot')).toBe('users/alice/hot/');
    expect(userKey('alice', 'cold')).toBe('users/alice/cold/');
    expect(userKey('alice', 'hot', '.keep')).toBe('users/alice/hot/.keep');
    expect(userKey('a.b', 'hot', 'src/..x/.env')).toBe('users/a.b/hot/src/..x/.env');
  });

  it.each(['', '.', '..', '.x', '-x', 'a/b', 'a\0', 'a'.repeat(256)])(
    'refuses the user id %j',
    (userId) => {
      expect(() => userKey(userId, 'hot')).toThrow(ValidationError);
    },
  );

  it.each(['..', '.', '../b', 'a/../../b', 'a/./b', '/etc/passwd', 'a//b', 'a/', 'a\0b'])(
    'refuses the path %j',
    (path) => {
      expect(() => userKey('alice', 'hot', path)).toThrow(ValidationError);
    },
  );

  it('any user id and path: refused, or a key that stays under users/<id>/ once resolved', () => {
    let keys = 0;
    fc.assert(
      fc.property(idLike, tier, pathLike, (userId, t, path) => {
        const key = keyOrRefused(userId, t, path);
        if (key === null) return;
        keys += 1;
        const own = `users/${userId}/`;
        expect(key.startsWith(`${own}${t}/`)).toBe(true);
        // What a store on a filesystem, or a sync to disk, makes of it.
        expect(posix.normalize(key).startsWith(own)).toBe(true);
        expect(key.split('/').slice(0, 3)).toEqual(['users', userId, t]);
        expect(key).not.toContain('\0');
      }),
      { numRuns: 10_000 },
    );
    // The property said something: a good share of the cases were keys, not refusals.
    expect(keys).toBeGreaterThan(1000);
  });

  it('every user id the API accepts names a key, and no other does', () => {
    fc.assert(
      fc.property(idLike, (userId) => {
        const accepted = userIdSchema.safeParse(userId).success;
        expect(keyOrRefused(userId, 'hot', '') !== null).toBe(accepted);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('isStorablePath', () => {
  it('any path it accepts resolves to itself under a prefix', () => {
    fc.assert(
      fc.property(pathLike, (path) => {
        if (!isStorablePath(path)) return;
        expect(posix.normalize(`p/${path}`)).toBe(`p/${path}`);
      }),
      { numRuns: 5_000 },
    );
  });
});
