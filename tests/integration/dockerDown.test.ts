import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { api } from '../support/api.js';

let server: RunningServer;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'matrx-nodocker-'));
  server = await startServer({
    logFile: join(dir, 'server.log'),
    env: {
      DOCKER_HOST: `unix://${join(dir, 'no-such-docker.sock')}`,
      MATRX_EMBEDDED_S3_DIR: join(dir, 's3'),
    },
  });
});
afterAll(() => server?.stop());

describe('with the Docker engine unreachable', () => {
  it('/health answers 200, degraded, naming what is down; strict answers 503', async () => {
    const health = await api('GET', '/health', { base: server.baseUrl });
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: 'degraded',
      docker: { reachable: false, latency_ms: expect.any(Number), error: expect.any(String) },
      registry: { store: 'memory', reachable: true },
      storage: { configured: true, reachable: true },
    });
    const strict = await api('GET', '/health?strict=1', { base: server.baseUrl });
    expect(strict.status).toBe(503);
    expect(strict.body).toMatchObject({ status: 'degraded' });
  });

  it('creating a sandbox is a 503 naming Docker, and the server stays up', async () => {
    const created = await api('POST', '/sandboxes', {
      base: server.baseUrl,
      json: { user_id: 'it-nodocker' },
    });
    expect(created.status).toBe(503);
    expect(created.body).toEqual({ detail: expect.stringContaining('Docker') });
    expect((await api('GET', '/health', { base: server.baseUrl })).status).toBe(200);
  });
});
