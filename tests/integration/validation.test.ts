import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { api, apiKey, baseUrl, testUser } from '../support/api.js';
import { createReady, deleteAll, type WireSandbox } from '../support/sandboxes.js';

const user = testUser('validation');
let sandbox: WireSandbox;

beforeAll(async () => {
  sandbox = await createReady(user);
});
afterAll(() => deleteAll(user));

const detailList = expect.arrayContaining([
  expect.objectContaining({
    loc: expect.any(Array),
    msg: expect.any(String),
    type: expect.any(String),
  }),
]);

describe('request validation on the real server', () => {
  const execPath = () => `/sandboxes/${sandbox.sandbox_id}/exec`;

  it.each([
    ['empty command', { command: '' }, 'command'],
    ['blank command', { command: '   \n\t' }, 'command'],
    ['too-long command', { command: 'x'.repeat(10001) }, 'command'],
    ['missing command', {}, 'command'],
    ['timeout 0', { command: 'true', timeout: 0 }, 'timeout'],
    ['timeout 601', { command: 'true', timeout: 601 }, 'timeout'],
    ['fractional timeout', { command: 'true', timeout: 1.5 }, 'timeout'],
    ['string timeout', { command: 'true', timeout: '10' }, 'timeout'],
    ['bad user', { command: 'true', user: 'ro ot' }, 'user'],
  ])('exec with %s is a 422 naming the field', async (_name, json, field) => {
    const response = await api<{ detail: { loc: string[] }[] }>('POST', execPath(), { json });
    expect(response.status).toBe(422);
    expect(response.body.detail).toEqual(detailList);
    expect(response.body.detail.map((d) => d.loc)).toContainEqual(['body', field]);
  });

  it('accepts a command of exactly the maximum length', async () => {
    const command = `: ${'x'.repeat(10000 - 2)}`;
    const response = await api('POST', execPath(), { json: { command } });
    expect(response.status).toBe(200);
  });

  it.each([
    ['space', 'a b'],
    ['slash', 'a/b'],
    ['empty', ''],
    ['dot', '.'],
    ['dot dot', '..'],
    ['too long', 'a'.repeat(256)],
    ['not a string', 42],
  ])('create with a bad user_id (%s) is a 422', async (_name, userId) => {
    const response = await api('POST', '/sandboxes', { json: { user_id: userId } });
    expect(response.status).toBe(422);
    expect(response.body.detail).toEqual(detailList);
  });

  it('create without a body or with a non-object config is a 422', async () => {
    expect((await api('POST', '/sandboxes')).status).toBe(422);
    expect((await api('POST', '/sandboxes', { json: [] })).status).toBe(422);
    const badConfig = await api('POST', '/sandboxes', { json: { user_id: 'x', config: 'no' } });
    expect(badConfig.status).toBe(422);
  });

  it('list with a bad user_id filter is a 422', async () => {
    const response = await api('GET', '/sandboxes?user_id=a%20b');
    expect(response.status).toBe(422);
  });

  it.each(['.', '..', '.x', '..x'])('user_id %j in the list query is a 422', async (userId) => {
    const listed = await api<{ detail: { loc: string[] }[] }>(
      'GET',
      `/sandboxes?user_id=${encodeURIComponent(userId)}`,
    );
    expect(listed.status).toBe(422);
    expect(listed.body.detail.map((d) => d.loc)).toContainEqual(['query', 'user_id']);
  });

  it.each(['.x', '..x'])('user_id %j in the storage path is a 422', async (userId) => {
    for (const method of ['GET', 'DELETE']) {
      const answer = await rawRequest(method, `/users/${userId}/storage?tier=hot`);
      expect(answer.status).toBe(422);
      expect(JSON.parse(answer.text).detail).toContainEqual(
        expect.objectContaining({ loc: ['path', 'user_id'] }),
      );
    }
  });

  // The HTTP layer resolves these segments before any route: /users/storage, /storage.
  it.each(['.', '..', '%2e%2e', '%2E'])(
    'user_id %j in the storage path, sent as it is, is the JSON 404 of no route',
    async (userId) => {
      for (const method of ['GET', 'DELETE']) {
        const answer = await rawRequest(method, `/users/${userId}/storage?tier=hot`);
        expect(answer).toEqual({ status: 404, text: JSON.stringify({ detail: 'Not Found' }) });
      }
    },
  );

  it('malformed JSON is a 400 with a detail', async () => {
    for (const path of ['/sandboxes', execPath(), `/sandboxes/${sandbox.sandbox_id}/error`]) {
      const response = await api('POST', path, { rawBody: '{"user_id": ' });
      expect(response.status).toBe(400);
      expect(response.body).toEqual({ detail: expect.any(String) });
    }
  });

  it('error reports need an error message', async () => {
    const response = await api('POST', `/sandboxes/${sandbox.sandbox_id}/error`, { json: {} });
    expect(response.status).toBe(422);
  });

  it.each([
    'sbx-000000000000',
    'sbx-123',
    'not-a-sandbox',
    'SBX-0123456789AB',
    'sbx-0123456789abc',
  ])('an unknown or malformed sandbox id (%s) is a 404 on every sandbox route', async (id) => {
    const calls = [
      api('GET', `/sandboxes/${id}`),
      api('DELETE', `/sandboxes/${id}`),
      api('POST', `/sandboxes/${id}/exec`, { json: { command: 'true' } }),
      api('POST', `/sandboxes/${id}/heartbeat`),
      api('POST', `/sandboxes/${id}/complete`),
      api('POST', `/sandboxes/${id}/error`, { json: { error: 'x' } }),
    ];
    for (const response of await Promise.all(calls)) {
      expect(response.status).toBe(404);
      expect(response.body).toEqual({ detail: `Sandbox ${id} not found` });
    }
  });

  it('an unknown route is a JSON 404', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['POST', '/sandboxes/x/y/z'],
      ['PUT', '/sandboxes'],
      ['GET', '/docs/../../package.json'],
    ] as const) {
      const response = await api(method, path);
      expect(response.status).toBe(404);
      expect(response.headers.get('content-type')).toContain('application/json');
      expect(response.body).toEqual({ detail: expect.any(String) });
    }
  });

  it('a cookie or a query that cannot be decoded changes nothing where no route reads them', async () => {
    const headers = { 'x-api-key': apiKey(), cookie: '=l8Iv(%R; a=%E0%A4%A' };
    const missing = await api('POST', '/sandboxes/x/extend%00?q=%E0%A4%A', { headers });
    expect(missing).toMatchObject({ status: 404, body: { detail: 'Not Found' } });
    const root = await api('GET', '/?q=%E0%A4%A', { headers });
    expect(root.status).toBe(200);
  });
});

describe('service routes', () => {
  it('GET / names the service and points at /docs, which exists', async () => {
    const root = await api('GET', '/');
    expect(root.status).toBe(200);
    expect(root.body).toEqual({
      service: 'matrx-sandbox-orchestrator',
      version: expect.any(String),
      docs: '/docs',
    });
    const docs = await api<string>('GET', '/docs');
    expect(docs.status).toBe(200);
    expect(docs.body).toContain('/openapi.json');
    const bundle = await api('GET', '/docs/swagger-ui-bundle.js');
    expect(bundle.status).toBe(200);
  });

  it('/openapi.json describes every route, the catch-all ones too, from the validating schemas', async () => {
    const doc = await api<{
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }
        >
      >;
    }>('GET', '/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths).sort()).toEqual(
      [
        '/',
        '/docs',
        '/docs/{asset}',
        '/openapi.json',
        '/health',
        '/sandboxes',
        '/sandboxes/{sandbox_id}',
        '/sandboxes/{sandbox_id}/complete',
        '/sandboxes/{sandbox_id}/error',
        '/sandboxes/{sandbox_id}/exec',
        '/sandboxes/{sandbox_id}/extend',
        '/sandboxes/{sandbox_id}/files',
        '/sandboxes/{sandbox_id}/files/archive',
        '/sandboxes/{sandbox_id}/files/edit',
        '/sandboxes/{sandbox_id}/files/list',
        '/sandboxes/{sandbox_id}/files/mkdir',
        '/sandboxes/{sandbox_id}/files/move',
        '/sandboxes/{sandbox_id}/files/search',
        '/sandboxes/{sandbox_id}/files/stat',
        '/sandboxes/{sandbox_id}/heartbeat',
        '/sandboxes/{sandbox_id}/processes',
        '/sandboxes/{sandbox_id}/processes/{process_id}',
        '/sandboxes/{sandbox_id}/processes/{process_id}/output',
        '/sandboxes/{sandbox_id}/processes/{process_id}/stdin',
        '/users/{user_id}/storage',
      ].sort(),
    );
    const execSchema = doc.body.paths['/sandboxes/{sandbox_id}/exec']?.post?.requestBody?.content[
      'application/json'
    ]?.schema as { properties: Record<string, { maxLength?: number; maximum?: number }> };
    expect(execSchema.properties.command?.maxLength).toBe(10000);
    expect(execSchema.properties.timeout?.maximum).toBe(600);
    // A file's body is raw bytes, not JSON.
    const fileBody = doc.body.paths['/sandboxes/{sandbox_id}/files']?.put?.requestBody?.content;
    expect(fileBody).toEqual({
      'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
    });
  });

  it('/health reports the contract fields', async () => {
    expect(await api('GET', '/health')).toMatchObject({
      status: 200,
      body: {
        status: 'healthy',
        active_sandboxes: expect.any(Number),
        uptime_seconds: expect.any(Number),
      },
    });
  });
});

/** A request whose path goes out as written: fetch would resolve its `.` and `..` segments. */
function rawRequest(method: string, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(baseUrl());
    const sent = request({ method, hostname, port, path, headers: { 'x-api-key': apiKey() } });
    sent.once('error', reject);
    sent.once('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('end', () =>
        resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
      );
    });
    sent.end();
  });
}
