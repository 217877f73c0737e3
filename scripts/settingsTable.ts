import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../lib/projectRoot.js';
import { withSettingsTable } from '../lib/settingsTable.js';

/** `npm run docs:settings`: writes the README's settings table from the settings schema. */
const readme = join(PROJECT_ROOT, 'README.md');
writeFileSync(readme, withSettingsTable(readFileSync(readme, 'utf8')));
execFileSync(join(PROJECT_ROOT, 'node_modules/.bin/prettier'), ['--write', readme]);
