import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import type { Logger } from '../../logger.js';
import { PROJECT_ROOT } from '../../projectRoot.js';
import { dockerStatus } from './dockerErrors.js';

const BUILD_SCRIPT = join(PROJECT_ROOT, 'sandbox-image', 'build.sh');

/** The labels sandbox-image/ puts on what it builds (its README has them). */
const TITLE_LABEL = 'org.opencontainers.image.title';
const TITLE = 'matrx-sandbox';
const RECIPE_LABEL = 'matrx.recipe';
const VARIANT_LABEL = 'matrx.variant';

export type ImageState =
  | { kind: 'missing' }
  | { kind: 'current' }
  /** Built from another recipe than sandbox-image/ holds now, or before recipes were recorded. */
  | { kind: 'stale'; builtFrom: string | null; recipe: string; buildArgs: string[] }
  /** Not built from sandbox-image/ (an operator's own template): used as it is. */
  | { kind: 'foreign' };

/** The recipe of a variant, from build.sh's flags for it. */
export type RecipeOf = (buildArgs: string[]) => Promise<string>;

/**
 * What the image with these labels (null: no such image) is, against what sandbox-image/ would
 * build now for the same variant.
 */
export async function imageState(
  labels: Readonly<Record<string, string>> | null,
  recipeOf: RecipeOf,
): Promise<ImageState> {
  if (labels === null) return { kind: 'missing' };
  const builtFrom = labels[RECIPE_LABEL] ?? null;
  if (builtFrom === null && labels[TITLE_LABEL] !== TITLE) return { kind: 'foreign' };
  const variant = labels[VARIANT_LABEL];
  // Rebuilt as the variant it is; one built before variants existed becomes build.sh's default.
  const buildArgs = variant ? [`--variant=${variant}`] : [];
  const recipe = await recipeOf(buildArgs);
  return builtFrom === recipe
    ? { kind: 'current' }
    : { kind: 'stale', builtFrom, recipe, buildArgs };
}

/** build.sh computes the recipe, so there is one definition of it. */
const printRecipe: RecipeOf = async (buildArgs) => {
  const { stdout } = await promisify(execFile)('bash', [
    BUILD_SCRIPT,
    '--print-recipe',
    ...buildArgs,
  ]);
  return stdout.trim();
};

async function imageLabels(docker: Docker, image: string): Promise<Record<string, string> | null> {
  try {
    // Docker answers null, not {}, for an image without labels.
    return (await docker.getImage(image).inspect()).Config.Labels ?? {};
  } catch (error) {
    if (dockerStatus(error) === 404) return null;
    throw error;
  }
}

/** Builds the sandbox image with sandbox-image/build.sh, its output going to this process's. */
function buildSandboxImage(image: string, buildArgs: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT, '--if-missing', ...buildArgs], {
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
 * At startup: builds the sandbox image when the engine is there and the image is missing or stale
 * (in production it says how instead). An unreachable engine is a warning, not a failure: the API
 * starts degraded. An image not built from sandbox-image/ is used as it is.
 */
export async function ensureSandboxImage(
  image: string,
  logger: Logger,
  options: { buildWhenNeeded: boolean },
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
  let state: ImageState;
  try {
    state = await imageState(await imageLabels(docker, image), printRecipe);
  } catch (error) {
    logger.warn(`cannot tell whether sandbox image ${image} is current`, {
      image,
      error: (error as Error).message,
    });
    return;
  }
  if (state.kind === 'current') return;
  if (state.kind === 'foreign') {
    logger.info(`sandbox image ${image} was not built from sandbox-image/: used as it is`, {
      image,
    });
    return;
  }
  const details =
    state.kind === 'stale'
      ? { image, built_from: state.builtFrom, recipe: state.recipe }
      : { image };
  if (!options.buildWhenNeeded) {
    logger.error(
      state.kind === 'missing'
        ? `sandbox image ${image} is missing: creating a sandbox answers 503 until it is built with npm run image`
        : `sandbox image ${image} is stale (built from another recipe than sandbox-image/ holds): sandboxes start from it as it is until it is rebuilt with npm run image -- --if-missing`,
      details,
    );
    return;
  }
  logger.info(
    `sandbox image ${state.kind}: building it with sandbox-image/build.sh; the first build on a machine takes a few minutes, its progress follows`,
    details,
  );
  const started = Date.now();
  await buildSandboxImage(image, state.kind === 'stale' ? state.buildArgs : []);
  logger.info('sandbox image built', { image, seconds: Math.round((Date.now() - started) / 1000) });
}
