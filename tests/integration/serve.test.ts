import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { treePids } from '../../scripts/benchScale.js';
import { startServer, type RunningServer } from '../../scripts/serverProcess.js';
import { testUser } from '../support/api.js';
import { docker, sandboxContainers } from '../support/docker.js';
import { ownServer, type ExecReply, type WireSandbox } from '../support/sandboxes.js';

let server: RunningServer | undefined;
const user = testUser('serve');

afterAll(async () => {
  await server?.stop();
  // The server is gone, so its sandbox is removed here, the way an operator would.
  for (const container of await sandboxContainers(user)) {
    await docker.getContainer(container.Id).remove({ force: true });
  }
});

describe('npm run serve (production mode)', () => {
  it('on SIGTERM: no new requests, the exec in flight finishes and is answered, exit 0', async () => {
    const logFile = join(mkdtempSync(join(tmpdir(), 'matrx-serve-')), 'server.log');
    server = await startServer({
      logFile,
      mode: 'serve',
      env: {
        MATRX_HOST_ID: `it-serve-${randomBytes(3).toString('hex')}`,
        MATRX_DOCKER_NETWORK: 'none',
        MATRX_DRAIN_TIMEOUT_SECONDS: '30',
      },
    });
    // The API's process runs with the flags the supervisor gives it (scripts/launch/supervisor.ts).
    const apiArgs = treePids(server.process.pid ?? 0)
      .map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'))
      .find((args) => args.some((arg) => arg.endsWith('/serverless.js')));
    expect(apiArgs).toEqual(expect.arrayContaining(['--heap-growing-percent=50', '--noTimeout']));
    const { call } = ownServer(() => server?.baseUrl);
    const created = await call<WireSandbox>('POST', '/sandboxes', { user_id: user });
    expect(created.status).toBe(201);
    const running = call<ExecReply>('POST', `/sandboxes/${created.body.sandbox_id}/exec`, {
      command: 'sleep 3; echo finished',
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const exited = new Promise<number | null>((resolve) =>
      server?.process.once('exit', (code) => resolve(code)),
    );
    server.process.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const refused = await call('GET', '/health');
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ detail: expect.stringContaining('shutting down') });
    const ran = await running;
    expect(ran.status).toBe(200);
    expect(ran.body).toMatchObject({ exit_code: 0, stdout: 'finished\n' });
    expect(await exited).toBe(0);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('clients closed');
    expect(log).not.toContain('embedded S3');
  });
});
