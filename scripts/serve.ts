import { runMain } from '../lib/startup.js';
import { launch } from './launcher.js';

/** `npm run serve`: production (built code only, the S3 and image it is given). */
runMain(() => launch('production'));
