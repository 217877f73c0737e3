import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { loadConfig } from '../../lib/config.js';
import { ValidationError } from '../../lib/errors.js';
import { buildRoutes, routeLimits } from '../../lib/http/routes.js';
import { parseRequest } from '../../lib/http/validation.js';
import { sandboxWire } from '../../lib/wire.js';
import { FakeRuntime, serviceWith } from './fakes.js';

const settings = loadConfig({
  MATRX_CONTAINER_CPU_LIMIT: '2',
  MATRX_CONTAINER_MEMORY_LIMIT: '4g',
  MATRX_MAX_SESSION_DURATION_SECONDS: '7200',
  MATRX_SANDBOX_TEMPLATES: 'slim=matrx-sandbox-slim:latest',
  MATRX_ALLOWED_NETWORKS: 'none',
});
const routes = buildRoutes(routeLimits(settings));

/** The `loc`s of a create's 422, or [] when the config is accepted. */
function refused(config: unknown): (string | number)[][] {
  try {
    parseRequest(routes.createSandbox, { body: { user_id: 'alice', config } });
    return [];
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return error.issues.map((issue) => issue.loc);
  }
}

describe('a create config', () => {
  it('accepts each key within the host caps, and keeps unknown keys', () => {
    expect(
      refused({
        template: 'slim',
        cpu: 0.5,
        memory: '512m',
        ttl_seconds: 600,
        env: { API_TOKEN: 's3cret', _x: '' },
        network: 'none',
        idle_timeout_seconds: 300,
        tags: ['kept'],
      }),
    ).toEqual([]);
    expect(refused({ idle_timeout_seconds: 0 })).toEqual([]);
  });

  it.each([
    [{ template: 'huge' }, 'template'],
    [{ cpu: 0.05 }, 'cpu'],
    [{ cpu: 3 }, 'cpu'],
    [{ memory: '32m' }, 'memory'],
    [{ memory: '5g' }, 'memory'],
    [{ memory: 'lots' }, 'memory'],
    [{ ttl_seconds: 59 }, 'ttl_seconds'],
    [{ ttl_seconds: 7201 }, 'ttl_seconds'],
    [{ ttl_seconds: 60.5 }, 'ttl_seconds'],
    [{ env: { '1BAD': 'x' } }, 'env'],
    [{ env: { SANDBOX_ID: 'mine' } }, 'env'],
    [{ env: { A: 1 } }, 'env'],
    [{ env: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x'])) }, 'env'],
    [{ env: { BIG: 'x'.repeat(33 * 1024) } }, 'env'],
    [{ network: 'internet' }, 'network'],
    [{ network: 'host' }, 'network'],
    [{ idle_timeout_seconds: 30 }, 'idle_timeout_seconds'],
    [{ idle_timeout_seconds: 7201 }, 'idle_timeout_seconds'],
    [{ ttl_seconds: 600, idle_timeout_seconds: 900 }, 'idle_timeout_seconds'],
  ])('refuses %j with a 422 at body.config.%s', (config, key) => {
    const locs = refused(config);
    expect(locs.length).toBeGreaterThan(0);
    for (const loc of locs) expect(loc.slice(0, 3)).toEqual(['body', 'config', key]);
  });

  it('any config either passes or is refused at body.config, never with a crash', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })),
        (c) => {
          for (const loc of refused(c)) expect(loc.slice(0, 2)).toEqual(['body', 'config']);
        },
      ),
    );
  });
});

describe('a created sandbox', () => {
  it('gets its config applied to its container, and shows env values masked', async () => {
    const runtime = new FakeRuntime();
    const { service } = serviceWith(runtime);
    const sandbox = await service.create('alice', {
      cpu: 0.5,
      memory: '512m',
      ttl_seconds: 600,
      env: { API_TOKEN: 's3cret' },
      network: 'none',
      tags: ['kept'],
    });
    expect(runtime.specs[0]).toMatchObject({
      image: 'matrx-sandbox:test',
      cpuLimit: 0.5,
      memoryLimitBytes: 512 * 1024 ** 2,
      network: 'none',
      env: { API_TOKEN: 's3cret', SANDBOX_ID: sandbox.sandboxId },
      labels: { 'matrx.template': 'default', 'matrx.ttl_seconds': '600' },
    });
    const wire = sandboxWire(sandbox);
    expect(wire).toMatchObject({
      config: { env: { API_TOKEN: '***' }, tags: ['kept'], cpu: 0.5 },
      template: 'default',
      ttl_seconds: 600,
      expires_at: new Date(sandbox.createdAt.getTime() + 600_000).toISOString(),
    });
    expect(JSON.stringify(wire)).not.toContain('s3cret');
  });

  it('without a config gets the host defaults', async () => {
    const runtime = new FakeRuntime();
    const { service } = serviceWith(runtime);
    const sandbox = await service.create('alice', {});
    expect(runtime.specs[0]).toMatchObject({ cpuLimit: 2, memoryLimitBytes: 4 * 1024 ** 3 });
    expect(sandbox.ttlSeconds).toBe(7200);
  });

  it('can be extended while active, and not once ended', async () => {
    const runtime = new FakeRuntime();
    const { service } = serviceWith(runtime);
    const sandbox = await service.create('alice', { ttl_seconds: 60 });
    const before = Date.now();
    const extended = await service.extend(sandbox.sandboxId, 3600);
    expect(extended.ttlSeconds).toBe(3600);
    expect(extended.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 3_600_000);
    await service.destroy(sandbox.sandboxId, false);
    await expect(service.extend(sandbox.sandboxId, 3600)).rejects.toThrow('is not active');
  });
});
