import type { RunningServer } from '../../scripts/serverProcess.js';
import { docker, sandboxContainers } from '../support/docker.js';

/** Stops the server, then fails the run if any test left a sandbox container behind. */
export default async function globalTeardown(): Promise<void> {
  await (globalThis as { matrxServer?: RunningServer }).matrxServer?.stop();
  const leftovers = await sandboxContainers();
  await Promise.all(
    leftovers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  if (leftovers.length > 0) {
    throw new Error(
      `tests left ${leftovers.length} sandbox container(s) behind: ${leftovers.map((c) => c.Names.join(',')).join(' ')}`,
    );
  }
}
