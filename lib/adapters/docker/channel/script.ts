import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../../projectRoot.js';

/** What runs in a sandbox for its commands: sent with each channel, never baked into the image. */
export const CHANNEL_SCRIPT = readFileSync(join(PROJECT_ROOT, 'sandbox-image/channel.sh'), 'utf8');

/** The script's first argument, as `$0` of its shell. */
export const SCRIPT_NAME = 'matrx-channel';
