import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { until } from './until.js';

export interface ThrowawayDocker {
  /** For DOCKER_HOST. */
  host: string;
  client: Docker;
  /** SIGTERM, then waits until it exited: its containers stop with it. */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

const DOCKERD = ['/usr/bin/dockerd', '/usr/sbin/dockerd'].find((path) => existsSync(path));
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find((path) => existsSync(path));

/** Why a throwaway engine cannot run here, or null when it can. */
export function throwawayDockerUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'a second dockerd needs root';
  if (!DOCKERD) return 'dockerd is not installed';
  return null;
}

/**
 * A Docker engine of a test's own, beside the shared one: its own socket, data, state and pid
 * file under `dir`, no bridge and no iptables (as CI runs the shared one), no daemon.json. In a
 * mount namespace of its own: a container the shared engine starts meanwhile copies the host's
 * mounts, and would pin this engine's container layers (its restart then cannot remove them).
 */
export async function startThrowawayDocker(dir: string): Promise<ThrowawayDocker> {
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'docker.sock');
  const config = join(dir, 'daemon.json');
  writeFileSync(config, '{}');
  const client = new Docker({ socketPath: socket });
  let daemon: ChildProcess | undefined;
  const start = async () => {
    const log = openSync(join(dir, 'dockerd.log'), 'a');
    const dockerd = [
      DOCKERD ?? 'dockerd',
      `--host=unix://${socket}`,
      `--config-file=${config}`,
      `--data-root=${join(dir, 'data')}`,
      `--exec-root=${join(dir, 'exec')}`,
      `--pidfile=${join(dir, 'docker.pid')}`,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--ip-forward=false',
    ];
    const [command = 'dockerd', ...args] = UNSHARE
      ? [UNSHARE, '--mount', '--propagation', 'private', ...dockerd]
      : dockerd;
    daemon = spawn(command, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    await until(
      'the throwaway dockerd answers',
      () =>
        client.ping().then(
          () => true,
          () => false,
        ),
      {
        timeoutMs: 60_000,
        intervalMs: 250,
      },
    );
  };
  const stop = async () => {
    const running = daemon;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    host: `unix://${socket}`,
    client,
    stop,
    start,
    destroy: async () => {
      // Containers removed first, so no rootfs stays mounted under `dir`.
      const containers = await client.listContainers({ all: true }).catch(() => []);
      await Promise.all(
        containers.map((c) =>
          client
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => undefined),
        ),
      );
      await stop();
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      } catch (error) {
        process.stderr.write(
          `throwaway dockerd: ${dir} not removed: ${(error as Error).message}\n`,
        );
      }
    },
  };
}
