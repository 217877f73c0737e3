import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { PROJECT_ROOT } from '../../projectRoot.js';
import { dockerStatus } from './dockerErrors.js';

const BUILD_SCRIPT = join(PROJECT_ROOT, 'sandbox-image', 'build.sh');

export async function imageExists(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (error) {
    if (dockerStatus(error) === 404) return false;
    throw error;
  }
}

/** Builds the sandbox image with sandbox-image/build.sh, its output going to this process's. */
export function buildSandboxImage(image: string): Promise<void> {
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
