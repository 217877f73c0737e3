import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { load as loadYaml } from 'js-yaml';
import { api, apiKey, testUser } from '../support/api.js';
import { sandboxContainers } from '../support/docker.js';

/** An HTTP event, or another kind (the scheduled reconcile has none). */
interface FunctionEvent {
  http?: { method: string; path: string };
}
interface ServerlessConfig {
  functions: Record<string, { events?: FunctionEvent[] }>;
}

/** Every HTTP route declared in serverless.yml, so a route added later is covered here too. */
function declaredRoutes(): { method: string; path: string }[] {
  const config = loadYaml(readFileSync('serverless.yml', 'utf8')) as ServerlessConfig;
  return Object.values(config.functions).flatMap((fn) =>
    (fn.events ?? []).flatMap(({ http }) => {
      if (!http) return [];
      const path = http.path
        .replace('{sandbox_id}', 'sbx-000000000000')
        .replace('{proxy+}', 'docs');
      const methods =
        http.method === 'any' ? ['GET', 'POST', 'DELETE'] : [http.method.toUpperCase()];
      return methods.map((method) => ({ method, path: path.startsWith('/') ? path : `/${path}` }));
    }),
  );
}

const routes = declaredRoutes();

/** A body that would pass validation on the exec route, so only the key can stop it. */
const bodyFor = (method: string) => (method === 'GET' ? undefined : { command: 'x' });

function keyForms(key: string): Record<string, string>[] {
  return [{ 'x-api-key': key }, { Authorization: `Bearer ${key}` }];
}
const guarded = routes.filter((r) => r.path !== '/health');
const label = (r: { method: string; path: string }) => `${r.method} ${r.path}`;

describe('API key on every route but /health', () => {
  it('finds the routes of serverless.yml', () => {
    expect(routes.length).toBeGreaterThanOrEqual(10);
    expect(routes.map(label)).toContain('GET /health');
  });

  it.each(guarded.map((r) => ({ ...r, name: label(r) })))(
    '$name without a key is 401',
    async (route) => {
      const response = await api(route.method, route.path, {
        headers: {},
        json: bodyFor(route.method),
      });
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ detail: expect.any(String) });
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
    },
  );

  it.each(guarded.map((r) => ({ ...r, name: label(r) })))(
    '$name with a wrong key is 403',
    async (route) => {
      for (const wrong of [`${apiKey()}x`, 'short', apiKey().replace(/.$/, '?')]) {
        for (const headers of keyForms(wrong)) {
          const response = await api(route.method, route.path, {
            headers,
            json: bodyFor(route.method),
          });
          expect(response.status).toBe(403);
          expect(response.body).toEqual({ detail: 'Invalid API key' });
        }
      }
    },
  );

  it('a wrong key never reaches body parsing or validation', async () => {
    const response = await api('POST', '/sandboxes', {
      headers: { 'X-API-Key': 'wrong' },
      rawBody: '{not json',
    });
    expect(response.status).toBe(403);
  });

  it('/health needs no key', async () => {
    const response = await api('GET', '/health', { headers: {} });
    expect(response.status).toBe(200);
  });

  it('a full create, exec, delete works with the key in each header form', async () => {
    const user = testUser('auth');
    for (const headers of [{ 'X-API-KEY': apiKey() }, ...keyForms(apiKey())]) {
      const created = await api<{ sandbox_id: string }>('POST', '/sandboxes', {
        headers,
        json: { user_id: user },
      });
      expect(created.status).toBe(201);
      const id = created.body.sandbox_id;
      const ran = await api('POST', `/sandboxes/${id}/exec`, {
        headers,
        json: { command: 'echo ok' },
      });
      expect(ran.body).toMatchObject({ exit_code: 0, stdout: 'ok\n' });
      expect((await api('DELETE', `/sandboxes/${id}`, { headers })).status).toBe(204);
    }
    expect(await sandboxContainers(user)).toEqual([]);
  });

  it('the OpenAPI document declares both schemes and never holds the key', async () => {
    const doc = await api<{ components: { securitySchemes: Record<string, unknown> } }>(
      'GET',
      '/openapi.json',
    );
    expect(doc.body.components.securitySchemes).toEqual({
      apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      bearer: { type: 'http', scheme: 'bearer' },
    });
    expect(JSON.stringify(doc.body)).not.toContain(apiKey());
  });

  it('the key appears in no line of the server log', () => {
    const log = readFileSync(process.env.MATRX_TEST_SERVER_LOG ?? '', 'utf8');
    expect(log.length).toBeGreaterThan(0);
    expect(log).not.toContain(apiKey());
  });
});
