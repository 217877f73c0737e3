import { describe, expect, it } from '@jest/globals';
import { userKey } from '../../lib/domain/storage.js';
import { isSkipped } from '../../lib/service/homeArchive.js';

describe('home sync rules', () => {
  it('skips temporary files, .DS_Store and __pycache__ anywhere', () => {
    expect(isSkipped('work/build.tmp')).toBe(true);
    expect(isSkipped('.DS_Store')).toBe(true);
    expect(isSkipped('pkg/__pycache__/mod.cpython-311.pyc')).toBe(true);
    expect(isSkipped('notes.tmp.txt')).toBe(false);
    expect(isSkipped('src/main.py')).toBe(false);
  });

  it('keeps each user in a prefix of their own', () => {
    expect(userKey('alice', 'hot')).toBe('users/alice/hot/');
    expect(userKey('alice', 'cold')).toBe('users/alice/cold/');
  });
});
