#!/usr/bin/env node
// Plain JavaScript on purpose: it runs before anything is compiled. The CLI is built to dist/ by
// `npm run build` (and by `npm ci`, through the prepare script); a checkout without dist/ builds
// it once here.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = new URL('../dist/client/cli/main.js', import.meta.url);

if (!existsSync(entry)) {
  process.stderr.write('matrx: dist/ is missing, building it (npm run build)...\n');
  const built = spawnSync(process.execPath, ['scripts/ensure-built.mjs'], {
    cwd: root,
    stdio: ['ignore', 2, 2],
  });
  if (built.status !== 0 || !existsSync(entry)) process.exit(built.status || 1);
}

const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
});
