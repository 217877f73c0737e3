import { afterAll, describe, expect, it } from '@jest/globals';
import { api, testUser } from '../support/api.js';
import { docker, sandboxContainers } from '../support/docker.js';
import {
  createReady,
  deleteAll,
  exec,
  waitUntilNoContainers,
  type WireSandbox,
} from '../support/sandboxes.js';

const user = testUser('lifecycle');

afterAll(() => deleteAll(user));

describe('a sandbox from create to complete, on the real server and Docker engine', () => {
  it('creates, runs commands, heartbeats, completes, and its container goes away', async () => {
    const sandbox = await createReady(user);
    expect(sandbox.sandbox_id).toMatch(/^sbx-[0-9a-f]{12}$/);
    expect(sandbox).toMatchObject({
      user_id: user,
      hot_path: '/home/agent',
      cold_path: '/data/cold',
    });

    const [container] = await sandboxContainers(user);
    expect(container?.Id).toBe(sandbox.container_id);
    expect(container?.Names).toEqual([`/${sandbox.sandbox_id}`]);
    const info = await docker.getContainer(sandbox.container_id ?? '').inspect();
    expect(info.Config.Labels).toMatchObject({
      'matrx.sandbox_id': sandbox.sandbox_id,
      'matrx.user_id': user,
    });
    expect(info.Config.Env).toEqual(
      expect.arrayContaining([
        `SANDBOX_ID=${sandbox.sandbox_id}`,
        `USER_ID=${user}`,
        'HOT_PATH=/home/agent',
      ]),
    );
    expect(info.HostConfig.RestartPolicy?.Name).toBe('no');
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.HostConfig.Memory).toBe(512 * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(1e9);

    const ran = await exec(sandbox.sandbox_id, 'echo out; echo err >&2; whoami; exit 3');
    expect(ran.status).toBe(200);
    expect(ran.body).toMatchObject({
      exit_code: 3,
      stdout: 'out\nagent\n',
      stderr: 'err\n',
      timed_out: false,
      stdout_truncated: false,
    });
    const asRoot = await exec(sandbox.sandbox_id, 'id -u', { user: 'root' });
    expect(asRoot.body.stdout).toBe('0\n');
    const home = await exec(sandbox.sandbox_id, 'pwd; ls -ld /data/cold | cut -d" " -f3');
    expect(home.body.stdout).toBe('/home/agent\nagent\n');

    const running = await api<WireSandbox>('GET', `/sandboxes/${sandbox.sandbox_id}`);
    expect(running.body.status).toBe('running');

    const beat = await api('POST', `/sandboxes/${sandbox.sandbox_id}/heartbeat`);
    expect(beat.status).toBe(200);
    expect(beat.body).toEqual({ acknowledged: true, sandbox_id: sandbox.sandbox_id });

    const completed = await api('POST', `/sandboxes/${sandbox.sandbox_id}/complete`, {
      json: { result: { ok: true } },
    });
    expect(completed.status).toBe(200);
    expect(completed.body).toEqual({ status: 'shutting_down', sandbox_id: sandbox.sandbox_id });

    await waitUntilNoContainers(user);
    const after = await api<WireSandbox>('GET', `/sandboxes/${sandbox.sandbox_id}`);
    expect(after.body.status).toBe('stopped');
    const late = await exec(sandbox.sandbox_id, 'true');
    expect(late.status).toBe(409);
    expect(late.body).toEqual({ detail: expect.stringContaining('not running') });
  });

  it('shares one registry across handlers: created by one function, read by the others', async () => {
    const sandbox = await createReady(user);
    const fetched = await api<WireSandbox>('GET', `/sandboxes/${sandbox.sandbox_id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body.sandbox_id).toBe(sandbox.sandbox_id);
    const listed = await api<{ sandboxes: WireSandbox[] }>('GET', `/sandboxes?user_id=${user}`);
    expect(listed.body.sandboxes.map((s) => s.sandbox_id)).toContain(sandbox.sandbox_id);
    const health = await api<{ active_sandboxes: number }>('GET', '/health');
    expect(health.body.active_sandboxes).toBeGreaterThanOrEqual(1);
    await api('DELETE', `/sandboxes/${sandbox.sandbox_id}`);
  });

  it('deletes gracefully or not, and a second delete is still 204', async () => {
    for (const graceful of ['true', 'false']) {
      const sandbox = await createReady(user);
      const deleted = await api('DELETE', `/sandboxes/${sandbox.sandbox_id}?graceful=${graceful}`);
      expect(deleted.status).toBe(204);
      expect(await sandboxContainers(user)).toEqual([]);
      const again = await api('DELETE', `/sandboxes/${sandbox.sandbox_id}`);
      expect(again.status).toBe(204);
      const gone = await api<WireSandbox>('GET', `/sandboxes/${sandbox.sandbox_id}`);
      expect(gone.body.status).toBe('stopped');
    }
  });

  it('an agent-reported error is acknowledged and shuts the sandbox down', async () => {
    const sandbox = await createReady(user);
    const reported = await api('POST', `/sandboxes/${sandbox.sandbox_id}/error`, {
      json: { error: 'tool crashed', details: { step: 3 } },
    });
    expect(reported.status).toBe(200);
    expect(reported.body).toEqual({
      status: 'shutting_down',
      sandbox_id: sandbox.sandbox_id,
      error_received: true,
    });
    await waitUntilNoContainers(user);
  });

  it('a container removed behind our back is a 409 on exec and a 204 on delete', async () => {
    const sandbox = await createReady(user);
    await docker.getContainer(sandbox.container_id ?? '').remove({ force: true });
    const ran = await exec(sandbox.sandbox_id, 'true');
    expect(ran.status).toBe(409);
    const deleted = await api('DELETE', `/sandboxes/${sandbox.sandbox_id}`);
    expect(deleted.status).toBe(204);
  });
});
