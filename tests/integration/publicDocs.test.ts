import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { api } from '../support/api.js';

let server: RunningServer;

beforeAll(async () => {
  const workDir = mkdtempSync(join(tmpdir(), 'matrx-docs-'));
  server = await startServer({
    logFile: join(workDir, 'server.log'),
    mode: 'serve',
    env: {
      MATRX_HOST_ID: `it-docs-${randomBytes(3).toString('hex')}`,
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_API_KEY: randomBytes(16).toString('hex'),
      MATRX_PUBLIC_DOCS: 'true',
    },
  });
});
afterAll(() => server?.stop());

describe('MATRX_PUBLIC_DOCS=true on a keyed server', () => {
  it('serves /docs, its files and /openapi.json without the key, and nothing else', async () => {
    const noKey = { base: server.baseUrl, headers: {} };
    const docs = await api('GET', '/docs', noKey);
    expect([docs.status, docs.headers.get('content-type')]).toEqual([
      200,
      expect.stringContaining('text/html'),
    ]);
    expect((await api('GET', '/docs/swagger-ui.css', noKey)).status).toBe(200);
    const openapi = await api<{ openapi: string }>('GET', '/openapi.json', noKey);
    expect([openapi.status, openapi.body.openapi]).toEqual([200, '3.1.0']);
    expect((await api('GET', '/sandboxes', noKey)).status).toBe(401);
    expect((await api('GET', '/', noKey)).status).toBe(401);
  });
});
