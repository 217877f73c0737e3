import { PassThrough, type Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { READY_LINE } from '../lib/adapters/docker/readiness.js';

/** The raw side: what a caller does with dockerode alone, no service in between. */

/** A container started the way the API starts a sandbox's, once it printed its ready line. */
export async function rawCreateReady(
  docker: Docker,
  options: { name: string; image: string; user: string; memoryBytes: number },
): Promise<Docker.Container> {
  const container = await docker.createContainer({
    name: options.name,
    Image: options.image,
    // No matrx.sandbox_id: a server with the memory registry on this engine (a test's, another
    // bench's) would take the container for an orphan of its own, adopt it and maybe end it.
    Labels: { 'matrx.user_id': options.user },
    // The limits the API gives its sandboxes, so both sides start the same container.
    HostConfig: {
      NetworkMode: 'none',
      RestartPolicy: { Name: 'no' },
      NanoCpus: 2e9,
      Memory: options.memoryBytes,
    },
  });
  const output = (await container.attach({ stream: true, stdout: true, stderr: true })) as Duplex;
  const ready = new Promise<void>((resolve) => {
    let seen = '';
    output.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.includes(READY_LINE)) resolve();
    });
  });
  await container.start();
  await ready;
  output.destroy();
  return container;
}

/** `echo hi` in an engine exec of its own, as `docker exec` runs it. */
export async function rawExec(docker: Docker, container: Docker.Container): Promise<void> {
  const exec = await container.exec({
    Cmd: ['bash', '-c', 'echo hi'],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  docker.modem.demuxStream(stream, new PassThrough().resume(), new PassThrough().resume());
  await new Promise((resolve) => stream.once('end', resolve));
  await exec.inspect();
}

/** Removes a container, killed first; one already gone is no failure. */
export async function removeContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true });
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
}
