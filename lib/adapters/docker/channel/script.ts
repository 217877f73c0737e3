import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../../projectRoot.js';

/** What runs in a sandbox for its commands: sent with each channel, never baked into the image. */
export const CHANNEL_SCRIPT = readFileSync(join(PROJECT_ROOT, 'sandbox-image/channel.sh'), 'utf8');

/** The script's first argument, as `$0` of its shell. */
export const SCRIPT_NAME = 'matrx-channel';

/** Where the compiled channel is put in a sandbox (root's, like the folder it is in). */
export const COMPILED_CHANNEL_PATH = '/run/matrx/bin/matrx-channel';

const compiledPath = join(PROJECT_ROOT, 'dist/sandbox/matrx-channel');

/**
 * The compiled command channel (sandbox-image/exec-channel.c, built by `npm run build` where a C
 * compiler is), or undefined: commands then take a plain engine exec each.
 */
export function loadCompiledChannel(path = compiledPath): Buffer | undefined {
  return existsSync(path) ? readFileSync(path) : undefined;
}
