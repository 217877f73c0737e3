import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { Logger } from '../../logger.js';
import { PROJECT_ROOT } from '../../projectRoot.js';
import { dockerStatus } from './dockerErrors.js';

const BUILD_SCRIPT = join(PROJECT_ROOT, 'sandbox-image', 'build.sh');

async function imageExists(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (error) {
    if (dockerStatus(error) === 404) return false;
    throw error;
  }
}

/** Builds the sandbox image with sandbox-image/build.sh, its output going to this process's. */
function buildSandboxImage(image: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, MATRX_SANDBOX_IMAGE: image },
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${BUILD_SCRIPT} exited with ${code}`)),
    );
  });
}

/**
 * At startup: builds the sandbox image when the engine is there and the image is not (in
 * production it says how instead). An unreachable engine is a warning, not a failure: the API
 * starts degraded.
 */
export async function ensureSandboxImage(
  image: string,
  logger: Logger,
  options: { buildWhenMissing: boolean },
): Promise<void> {
  const docker = new Docker();
  try {
    await docker.ping();
  } catch (error) {
    logger.warn(
      'Docker engine unreachable: the API starts degraded and creating a sandbox answers 503',
      { error: (error as Error).message },
    );
    return;
  }
  if (await imageExists(docker, image)) return;
  if (!options.buildWhenMissing) {
    logger.error(
      `sandbox image ${image} is missing: creating a sandbox answers 503 until it is built with npm run image`,
      { image },
    );
    return;
  }
  logger.info('sandbox image missing: building it', { image });
  await buildSandboxImage(image);
}
