import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { api, testUser } from '../support/api.js';
import { waitUntilNoContainers, type WireSandbox } from '../support/sandboxes.js';

type Entry = Record<string, unknown>;

function entries(file: string): Entry[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Entry);
}

/** Polls the log, since the server writes a line a moment after it answers. */
async function entriesUntil(file: string, found: (all: Entry[]) => boolean): Promise<Entry[]> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const all = entries(file);
    if (found(all)) return all;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return entries(file);
}

describe('JSON logs of the integration server (INFO)', () => {
  const log = () => process.env.MATRX_TEST_SERVER_LOG ?? '';
  const user = testUser('logging');

  it('every line is one JSON entry with level, timestamp and message', () => {
    const all = entries(log());
    expect(all.length).toBeGreaterThan(0);
    for (const entry of all) {
      expect(entry).toEqual(
        expect.objectContaining({
          level: expect.any(String),
          timestamp: expect.any(String),
          message: expect.any(String),
        }),
      );
    }
  });

  it('a create-exec-delete yields its request lines and lifecycle entries, with its ids', async () => {
    const created = await api<WireSandbox>('POST', '/sandboxes', {
      json: { user_id: user },
      headers: { 'x-api-key': process.env.MATRX_TEST_API_KEY ?? '', 'X-Request-Id': 'req-log-1' },
    });
    expect(created.headers.get('x-request-id')).toBe('req-log-1');
    const id = created.body.sandbox_id;
    const ran = await api('POST', `/sandboxes/${id}/exec`, {
      json: { command: 'echo top-secret-value' },
    });
    const execRequestId = ran.headers.get('x-request-id');
    expect(execRequestId).toMatch(/^[0-9a-f-]{36}$/);
    await api('POST', `/sandboxes/${id}/heartbeat`);
    await api('POST', `/sandboxes/${id}/complete`);
    await waitUntilNoContainers(user);

    const all = await entriesUntil(log(), (found) =>
      found.some((e) => e.message === 'sandbox destroyed' && e.sandbox_id === id),
    );
    const mine = all.filter((e) => e.sandbox_id === id);
    const messages = mine.map((e) => e.message);
    for (const expected of [
      'sandbox create requested',
      'container started',
      'sandbox ready',
      'exec finished',
      'sandbox completed by agent',
      'sandbox shutting down',
      'sandbox destroyed',
    ]) {
      expect(messages).toContain(expected);
    }
    for (const entry of mine.filter((e) => e.message !== 'request')) {
      expect(entry.user_id).toBe(user);
    }
    expect(mine.find((e) => e.message === 'sandbox ready')?.ready_ms).toEqual(expect.any(Number));
    expect(mine.find((e) => e.message === 'sandbox create requested')?.request_id).toBe(
      'req-log-1',
    );

    const changes = mine.filter((e) => e.message === 'sandbox status changed');
    expect(changes.map((e) => `${String(e.from)}>${String(e.to)}`)).toEqual([
      'creating>starting',
      'starting>ready',
      'ready>running',
      'running>shutting_down',
      'shutting_down>stopped',
    ]);
    expect(changes.every((e) => typeof e.reason === 'string')).toBe(true);

    const exec = mine.find((e) => e.message === 'exec finished');
    expect(exec).toMatchObject({
      exit_code: 0,
      timed_out: false,
      command_length: 'echo top-secret-value'.length,
      request_id: execRequestId,
    });
    expect(JSON.stringify(all)).not.toContain('top-secret-value');

    const requestLine = all.find((e) => e.message === 'request' && e.request_id === execRequestId);
    expect(requestLine).toMatchObject({
      level: 'INFO',
      method: 'POST',
      path: `/sandboxes/${id}/exec`,
      route: '/sandboxes/{sandbox_id}/exec',
      status: 200,
      duration_ms: expect.any(Number),
      sandbox_id: id,
    });
  });

  it('a rejected request is one WARNING line; a bad request id is replaced', async () => {
    const response = await api('GET', '/sandboxes/sbx-000000000000', {
      headers: { 'x-api-key': process.env.MATRX_TEST_API_KEY ?? '', 'X-Request-Id': 'bad id!' },
    });
    const requestId = response.headers.get('x-request-id');
    expect(requestId).not.toBe('bad id!');
    const all = await entriesUntil(log(), (found) => found.some((e) => e.request_id === requestId));
    expect(all.filter((e) => e.request_id === requestId)).toEqual([
      expect.objectContaining({ level: 'WARNING', message: 'request rejected', status: 404 }),
    ]);
  });

  it('has no DEBUG lines at INFO', () => {
    expect(entries(log()).filter((e) => e.level === 'DEBUG')).toEqual([]);
  });
});

describe('text logs at DEBUG', () => {
  let server: RunningServer;
  let logFile: string;
  const user = testUser('textlog');

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'matrx-textlog-'));
    logFile = join(dir, 'server.log');
    server = await startServer({
      logFile,
      env: {
        MATRX_LOG_FORMAT: 'text',
        MATRX_LOG_LEVEL: 'DEBUG',
        MATRX_DOCKER_NETWORK: 'none',
        MATRX_EMBEDDED_S3_DIR: join(dir, 's3'),
      },
    });
  });
  afterAll(() => server?.stop());

  it('writes one readable line per entry, with the same fields, and DEBUG detail', async () => {
    const created = await api<WireSandbox>('POST', '/sandboxes', {
      base: server.baseUrl,
      json: { user_id: user },
    });
    const id = created.body.sandbox_id;
    await api('POST', `/sandboxes/${id}/exec`, {
      base: server.baseUrl,
      json: { command: 'echo "two\nlines"' },
    });
    await api('DELETE', `/sandboxes/${id}`, { base: server.baseUrl });
    const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    for (const line of lines) {
      expect(line).toMatch(/^\d{4}-\d{2}-\d{2}T\S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S/);
    }
    const ready = lines.find((line) => line.includes(' sandbox ready '));
    expect(ready).toContain(`sandbox_id=${id}`);
    expect(ready).toMatch(/ready_ms=\d+/);
    expect(lines.some((line) => / DEBUG +docker call .*operation=create/.test(line))).toBe(true);
    // At DEBUG the command itself is logged, still on one line.
    expect(
      lines.some((line) => line.includes('exec command') && line.includes('two\\nlines')),
    ).toBe(true);
  });
});
