import Docker from 'dockerode';

/** Stops the server, then fails the run if any test left a sandbox container behind. */
export default async function globalTeardown() {
  await globalThis.matrxServer?.stop();
  const docker = new Docker();
  const containers = await docker.listContainers({
    all: true,
    filters: { label: ['matrx.sandbox_id'] },
  });
  const leftovers = containers.filter((c) => (c.Labels['matrx.user_id'] ?? '').startsWith('it-'));
  await Promise.all(
    leftovers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  if (leftovers.length > 0) {
    const names = leftovers.map((c) => c.Names.join(',')).join(' ');
    throw new Error(`tests left ${leftovers.length} sandbox container(s) behind: ${names}`);
  }
}
