import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort, startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { listeningSockets, type Listener } from '../support/sockets.js';

let server: RunningServer;
let httpPort: number;
let lambdaPort: number;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'matrx-listeners-'));
  lambdaPort = await freePort();
  server = await startServer({
    logFile: join(dir, 'server.log'),
    env: {
      MATRX_HOST: '0.0.0.0',
      MATRX_LAMBDA_PORT: String(lambdaPort),
      MATRX_DOCKER_NETWORK: 'none',
      MATRX_EMBEDDED_S3_DIR: join(dir, 's3'),
    },
  });
  httpPort = Number(new URL(server.baseUrl).port);
});
afterAll(() => server?.stop());

const on = (listeners: Listener[], port: number) =>
  listeners.filter((listener) => listener.port === port).map((listener) => listener.address);

describe('with MATRX_HOST=0.0.0.0', () => {
  it("the API follows MATRX_HOST; the framework's Lambda invoke port is on 127.0.0.1 only", () => {
    const listeners = listeningSockets(server.process.pid ?? 0);
    expect(on(listeners, httpPort)).toEqual(['0.0.0.0']);
    expect(on(listeners, lambdaPort)).toEqual(['127.0.0.1']);
  });

  it('the invoke port answers on loopback', async () => {
    const invoked = await fetch(
      `http://127.0.0.1:${lambdaPort}/2015-03-31/functions/matrx-sandbox-orchestrator-dev-health/invocations`,
      { method: 'POST', body: '{}' },
    );
    expect(invoked.status).toBe(200);
  });
});
