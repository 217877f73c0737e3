import { afterAll, describe, expect, it } from '@jest/globals';
import { api, testUser } from '../support/api.js';
import { sandboxContainers } from '../support/docker.js';
import { deleteAll, type WireSandbox } from '../support/sandboxes.js';

const alice = testUser('alice');
const bob = testUser('bob');

afterAll(async () => {
  await deleteAll(alice);
  await deleteAll(bob);
});

describe('parallel creates', () => {
  it('10 at once for two users all become ready, and the user filter is exact', async () => {
    const users = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? alice : bob));
    const created = await Promise.all(
      users.map((user_id) => api<WireSandbox>('POST', '/sandboxes', { json: { user_id } })),
    );
    expect(created.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(created.map((r) => r.body.status)).toEqual(Array(10).fill('ready'));
    expect(new Set(created.map((r) => r.body.sandbox_id)).size).toBe(10);

    for (const user of [alice, bob]) {
      const listed = await api<{ sandboxes: WireSandbox[]; total: number }>(
        'GET',
        `/sandboxes?user_id=${user}`,
      );
      expect(listed.status).toBe(200);
      expect(listed.body.total).toBe(5);
      expect(listed.body.sandboxes.every((s) => s.user_id === user)).toBe(true);
      expect(await sandboxContainers(user)).toHaveLength(5);
    }
    const all = await api<{ sandboxes: WireSandbox[]; total: number }>('GET', '/sandboxes');
    expect(all.body.total).toBe(all.body.sandboxes.length);
    expect(all.body.total).toBeGreaterThanOrEqual(10);
  });
});
