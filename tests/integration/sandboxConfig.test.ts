import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from '@jest/globals';
import { api, testUser } from '../support/api.js';
import { docker } from '../support/docker.js';
import { deleteAll, exec, type WireSandbox } from '../support/sandboxes.js';

const user = testUser('config');
const secret = `it-secret-${randomBytes(8).toString('hex')}`;

afterAll(() => deleteAll(user));

type ConfiguredSandbox = WireSandbox & {
  config: Record<string, unknown>;
  template: string;
  ttl_seconds: number;
  expires_at: string;
  created_at: string;
};

async function create(config: Record<string, unknown>) {
  return api<ConfiguredSandbox>('POST', '/sandboxes', { json: { user_id: user, config } });
}

describe('a sandbox made to its config, on the real engine', () => {
  let sandbox: ConfiguredSandbox;

  it('applies cpu, memory, network and env to the container, and echoes env masked', async () => {
    const created = await create({
      cpu: 0.5,
      memory: '256m',
      ttl_seconds: 600,
      env: { MATRX_IT_SECRET: secret },
      network: 'none',
      tags: ['kept'],
    });
    expect(created.status).toBe(201);
    sandbox = created.body;
    expect(sandbox).toMatchObject({
      status: 'ready',
      template: 'default',
      ttl_seconds: 600,
      config: { env: { MATRX_IT_SECRET: '***' }, tags: ['kept'], memory: '256m' },
    });
    expect(Date.parse(sandbox.expires_at) - Date.parse(sandbox.created_at)).toBe(600_000);
    const info = await docker.getContainer(sandbox.container_id ?? '').inspect();
    expect(info.HostConfig).toMatchObject({
      NanoCpus: 500_000_000,
      Memory: 256 * 1024 ** 2,
      NetworkMode: 'none',
      CapDrop: ['ALL'],
    });
    expect([...(info.HostConfig.CapAdd ?? [])].sort()).toEqual(
      ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID'].sort(),
    );
  });

  it('gives env to every command, and never writes its value in a response or the log', async () => {
    const ran = await exec(sandbox.sandbox_id, 'echo "$MATRX_IT_SECRET"');
    expect(ran.body.stdout).toBe(`${secret}\n`);
    const got = await api('GET', `/sandboxes/${sandbox.sandbox_id}`);
    const listed = await api('GET', `/sandboxes?user_id=${user}`);
    expect(JSON.stringify([got.body, listed.body])).not.toContain(secret);
    const log = readFileSync(process.env.MATRX_TEST_SERVER_LOG ?? '', 'utf8');
    expect(log).toContain(sandbox.sandbox_id);
    expect(log).not.toContain(secret);
  });

  it('lets root install (chown, write anywhere) and leaves agent without capabilities', async () => {
    const asRoot = await exec(
      sandbox.sandbox_id,
      'touch /etc/matrx-x && chown agent /etc/matrx-x && touch /home/agent/by-root && grep CapEff /proc/self/status',
      { user: 'root' },
    );
    expect(asRoot.body).toMatchObject({ exit_code: 0 });
    expect(asRoot.body.stdout).toContain('00000000000000fb');
    const asAgent = await exec(sandbox.sandbox_id, 'grep CapEff /proc/self/status; touch /etc/y');
    expect(asAgent.body.stdout).toContain('0000000000000000');
    expect(asAgent.body.exit_code).not.toBe(0);
  });

  it('extends an active sandbox, and refuses once it has ended', async () => {
    const before = Date.now();
    const extended = await api<ConfiguredSandbox>(
      'POST',
      `/sandboxes/${sandbox.sandbox_id}/extend`,
      { json: { ttl_seconds: 3600 } },
    );
    expect(extended.status).toBe(200);
    expect(extended.body.ttl_seconds).toBe(3600);
    expect(Date.parse(extended.body.expires_at)).toBeGreaterThanOrEqual(before + 3_599_000);
    expect((await api('DELETE', `/sandboxes/${sandbox.sandbox_id}`)).status).toBe(204);
    const late = await api('POST', `/sandboxes/${sandbox.sandbox_id}/extend`, {
      json: { ttl_seconds: 3600 },
    });
    expect(late.status).toBe(409);
  });

  it('makes a sandbox of the template its config picks', async () => {
    const created = await create({ template: 'second' });
    expect(created.status).toBe(201);
    expect(created.body.template).toBe('second');
    const info = await docker.getContainer(created.body.container_id ?? '').inspect();
    expect(info.Config.Image).toBe('matrx-sandbox:latest');
    expect(info.Config.Labels['matrx.template']).toBe('second');
    expect((await api('DELETE', `/sandboxes/${created.body.sandbox_id}`)).status).toBe(204);
  });

  it('refuses a config past the host caps with a 422 naming the key', async () => {
    const refused = await create({ cpu: 64, template: 'nope' });
    expect(refused.status).toBe(422);
    expect(
      (refused.body as unknown as { detail: { loc: unknown[] }[] }).detail.map((d) => d.loc),
    ).toEqual([
      ['body', 'config', 'template'],
      ['body', 'config', 'cpu'],
    ]);
  });
});
