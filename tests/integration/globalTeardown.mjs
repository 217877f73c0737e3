import { readFileSync } from 'node:fs';
import Docker from 'dockerode';

/** Across the whole run: every line of the server's output is a JSON entry, none holds the key. */
function checkServerLog() {
  const file = process.env.MATRX_TEST_SERVER_LOG;
  const key = process.env.MATRX_TEST_API_KEY;
  if (!file || !key) return;
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  lines.forEach((line, index) => {
    if (line.includes(key)) throw new Error(`the API key appears in server log line ${index + 1}`);
    try {
      JSON.parse(line);
    } catch {
      throw new Error(`server log line ${index + 1} is not JSON: ${line.slice(0, 200)}`);
    }
  });
}

/** Stops the server, then fails the run if any test left a sandbox container behind. */
export default async function globalTeardown() {
  await globalThis.matrxServer?.stop();
  await globalThis.matrxPostgres?.destroy();
  checkServerLog();
  const docker = new Docker();
  const containers = await docker.listContainers({
    all: true,
    filters: { label: ['matrx.sandbox_id'] },
  });
  // This run's only: another run on the same engine keeps its sandboxes.
  const prefix = `it-${process.env.MATRX_TEST_RUN}-`;
  const leftovers = containers.filter((c) => (c.Labels['matrx.user_id'] ?? '').startsWith(prefix));
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
