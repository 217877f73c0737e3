import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { imageState, type RecipeOf } from '../../lib/adapters/docker/sandboxImage.js';
import { PROJECT_ROOT } from '../../lib/projectRoot.js';

const OURS = 'org.opencontainers.image.title';
/** The recipe build.sh would print for each variant's flags. */
const recipeOf: RecipeOf = (args) =>
  Promise.resolve(args.includes('--variant=slim') ? 'slim-now' : 'workbench-now');

describe('whether the sandbox image is current', () => {
  it('is missing when the engine has no such image', async () => {
    expect(await imageState(null, recipeOf)).toEqual({ kind: 'missing' });
  });

  it('is current when its recipe label is the recipe of its variant now', async () => {
    const workbench = { [OURS]: 'matrx-sandbox', 'matrx.recipe': 'workbench-now' };
    expect(await imageState(workbench, recipeOf)).toEqual({ kind: 'current' });
    const slim = { 'matrx.recipe': 'slim-now', 'matrx.variant': 'slim' };
    expect(await imageState(slim, recipeOf)).toEqual({ kind: 'current' });
  });

  it('is stale, and rebuilt as its own variant, when its recipe differs', async () => {
    const slim = { [OURS]: 'matrx-sandbox', 'matrx.recipe': 'old', 'matrx.variant': 'slim' };
    expect(await imageState(slim, recipeOf)).toEqual({
      kind: 'stale',
      builtFrom: 'old',
      recipe: 'slim-now',
      buildArgs: ['--variant=slim'],
    });
  });

  it('is stale when it was built before recipes were recorded: it becomes the default', async () => {
    expect(await imageState({ [OURS]: 'matrx-sandbox' }, recipeOf)).toEqual({
      kind: 'stale',
      builtFrom: null,
      recipe: 'workbench-now',
      buildArgs: [],
    });
  });

  it('leaves an image that sandbox-image/ did not build alone', async () => {
    expect(await imageState({}, recipeOf)).toEqual({ kind: 'foreign' });
    expect(await imageState({ [OURS]: 'my-python' }, recipeOf)).toEqual({ kind: 'foreign' });
  });
});

describe('build.sh --print-recipe', () => {
  const recipe = (...args: string[]) =>
    execFileSync(
      'bash',
      [join(PROJECT_ROOT, 'sandbox-image', 'build.sh'), '--print-recipe', ...args],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );

  it('prints one sha256 per variant, the same each time, with no Docker', () => {
    const workbench = recipe();
    expect(workbench).toMatch(/^[0-9a-f]{64}\n$/);
    expect(recipe('--variant=workbench')).toBe(workbench);
    expect(recipe('--variant=slim')).toMatch(/^[0-9a-f]{64}\n$/);
    expect(recipe('--variant=slim')).not.toBe(workbench);
  });

  it('refuses a variant that has no package list', () => {
    expect(() => recipe('--variant=../packages/slim')).toThrow(/no variant/);
  });
});
