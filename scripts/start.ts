import { runMain } from '../lib/startup.js';
import { launch } from './launcher.js';

/** `npm start`: development (builds a missing sandbox image, embedded S3 when none is set). */
runMain(() => launch('development'));
