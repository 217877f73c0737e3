import Docker from 'dockerode';
import { testRunPrefix } from './api.js';

export const docker = new Docker();

/** Containers of our sandboxes whose user id starts with `prefix`, running or not. */
export async function sandboxContainers(prefix = testRunPrefix()) {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: ['matrx.sandbox_id'] },
  });
  return containers.filter((c) => (c.Labels['matrx.user_id'] ?? '').startsWith(prefix));
}

export async function dockerReachable(): Promise<string | null> {
  try {
    await docker.ping();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}
